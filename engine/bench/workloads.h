// The benchmark's command streams, generated before anything is timed.
//
// mixed: exchange-core's published mix: about 9% new GTC limit orders, 3% IOC, 6%
//   cancels, 82% moves (replace: a new price, sometimes a smaller quantity), over about
//   1,000 resting orders on about 750 price levels, from 1,000 accounts.
// insert: Liquibook's insert test: limit orders alternating buy and sell at random
//   prices in a 10-tick band, so they cross, quantity 100-1000, no cancels.
//
// The mixed stream needs to know which orders are alive to cancel or move them, so it is
// generated against a shadow exchange that applies each command as it is made. The
// benchmark then applies the same stream to a fresh exchange: same events, same book.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "book/command.h"
#include "matching/exchange.h"

namespace venue::bench {

inline constexpr InstrumentId kInstrument = 1;
inline constexpr Price kMid = 50'000;
inline const Instrument kBenchInstrument{kInstrument, 1, 100'000};

struct Workload {
  std::vector<Command> commands;
  std::size_t warmup = 0;  // leading commands applied before timing starts
};

// Which orders are alive, from the reports a shadow exchange emits.
class LiveOrders final : public EventSink {
 public:
  struct Live {
    Side side;
    Price price;
    Quantity quantity;
    AccountId account;
  };

  void on_event(const Event& event) override {
    if (event.type != EventType::Report) return;
    const ExecutionReport& r = event.report;
    const bool alive = (r.order_status == OrderStatus::New || r.order_status == OrderStatus::PartiallyFilled) &&
                       r.leaves_qty > 0;
    const bool gone = r.order_status == OrderStatus::Filled || r.order_status == OrderStatus::Canceled ||
                      r.order_status == OrderStatus::Expired || r.order_status == OrderStatus::Rejected;
    if (alive) {
      auto [it, inserted] = index_.try_emplace(r.order_id, ids_.size());
      if (inserted) ids_.push_back(r.order_id);
      orders_[r.order_id] = Live{r.side, r.price, r.quantity, r.account_id};
    } else if (gone) {
      erase(r.order_id);
    }
  }

  std::size_t size() const { return ids_.size(); }
  OrderId pick(std::mt19937_64& random) const {
    return ids_[std::uniform_int_distribution<std::size_t>(0, ids_.size() - 1)(random)];
  }
  const Live& at(OrderId id) const { return orders_.at(id); }

 private:
  void erase(OrderId id) {
    auto it = index_.find(id);
    if (it == index_.end()) return;
    const std::size_t slot = it->second;
    ids_[slot] = ids_.back();
    index_[ids_[slot]] = slot;
    ids_.pop_back();
    index_.erase(id);
    orders_.erase(id);
  }

  std::vector<OrderId> ids_;
  std::unordered_map<OrderId, std::size_t> index_;
  std::unordered_map<OrderId, Live> orders_;
};

inline Workload mixed_workload(std::size_t ops, std::size_t warmup_ops, std::uint64_t seed) {
  constexpr std::size_t kResting = 1'000;
  // 1,000 orders at uniform prices over 2 x 640 ticks occupy about 750 levels (bids below
  // the mid, asks above); moves drift them by a few ticks.
  constexpr Price kHalfBand = 640;
  constexpr std::uint32_t kAccounts = 1'000;
  std::mt19937_64 random(seed);
  auto uniform = [&random](std::int64_t low, std::int64_t high) {
    return std::uniform_int_distribution<std::int64_t>(low, high)(random);
  };
  LiveOrders live;
  ExchangeOptions options;
  options.hugepages = HugePages::Off;
  Exchange shadow(live, options);
  shadow.add_instrument(kBenchInstrument);

  Workload workload;
  workload.commands.reserve(kResting + warmup_ops + ops);
  OrderId next_id = 1;
  auto emit = [&](const Command& command) {
    workload.commands.push_back(command);
    shadow.apply(command, 0);
  };
  auto passive_price = [&](Side side) {
    return side == Side::Buy ? kMid - uniform(1, kHalfBand) : kMid + uniform(1, kHalfBand);
  };
  auto new_order = [&](Side side, Price price, TimeInForce tif, Quantity quantity) {
    NewOrder order;
    order.order_id = next_id++;
    order.account_id = static_cast<AccountId>(uniform(1, kAccounts));
    order.instrument_id = kInstrument;
    order.side = side;
    order.type = OrderType::Limit;
    order.time_in_force = tif;
    order.price = price;
    order.quantity = quantity;
    emit(Command::make(CommandOrigin{}, order));
  };

  for (std::size_t i = 0; i < kResting; ++i) {
    const Side side = i % 2 == 0 ? Side::Buy : Side::Sell;
    new_order(side, passive_price(side), TimeInForce::Gtc, uniform(1, 100));
  }
  workload.warmup = kResting + warmup_ops;
  for (std::size_t i = 0; i < warmup_ops + ops; ++i) {
    const std::int64_t roll = uniform(0, 99);
    // Keep the book near its size: new orders replace what IOCs and cancels take away.
    const bool thin = live.size() < kResting * 9 / 10;
    const bool thick = live.size() > kResting * 11 / 10;
    if ((roll < 9 || thin) && !thick) {
      const Side side = uniform(0, 1) == 0 ? Side::Buy : Side::Sell;
      new_order(side, passive_price(side), TimeInForce::Gtc, uniform(1, 100));
    } else if (roll < 12) {
      // Marketable: crosses the spread by up to 10 ticks and takes what is there.
      const Side side = uniform(0, 1) == 0 ? Side::Buy : Side::Sell;
      const Price price = side == Side::Buy ? kMid + uniform(1, 10) : kMid - uniform(1, 10);
      new_order(side, price, TimeInForce::Ioc, uniform(1, 100));
    } else if (roll < 18 || thick) {
      const OrderId id = live.pick(random);
      emit(Command::make(CommandOrigin{}, CancelOrder{id, live.at(id).account, kInstrument}));
    } else {
      const OrderId id = live.pick(random);
      const LiveOrders::Live& order = live.at(id);
      Price price = order.price + uniform(-5, 5);
      price = order.side == Side::Buy ? std::clamp(price, kMid - kHalfBand, kMid - 1)
                                      : std::clamp(price, kMid + 1, kMid + kHalfBand);
      // One move in five only trims the quantity: the in-place path that keeps priority.
      const Quantity quantity = uniform(0, 4) == 0 && order.quantity > 1 ? order.quantity - 1 : order.quantity;
      emit(Command::make(CommandOrigin{},
                         ReplaceOrder{id, order.account, kInstrument, quantity == order.quantity ? price : order.price,
                                      quantity}));
    }
  }
  return workload;
}

inline Workload insert_workload(std::size_t ops, std::size_t warmup_ops, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  auto uniform = [&random](std::int64_t low, std::int64_t high) {
    return std::uniform_int_distribution<std::int64_t>(low, high)(random);
  };
  Workload workload;
  workload.commands.reserve(warmup_ops + ops);
  workload.warmup = warmup_ops;
  for (std::size_t i = 0; i < warmup_ops + ops; ++i) {
    NewOrder order;
    order.order_id = i + 1;
    order.account_id = static_cast<AccountId>(uniform(1, 1'000));
    order.instrument_id = kInstrument;
    order.side = i % 2 == 0 ? Side::Buy : Side::Sell;
    order.type = OrderType::Limit;
    order.time_in_force = TimeInForce::Gtc;
    order.price = kMid + uniform(0, 9);
    order.quantity = uniform(100, 1'000);
    workload.commands.push_back(Command::make(CommandOrigin{}, order));
  }
  return workload;
}

}  // namespace venue::bench
