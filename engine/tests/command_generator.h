// Test support: random commands of every kind over a few instruments and many
// accounts, seeded, as a venue's shards would deliver them (stream ids increasing per
// shard). Cancels and replaces mostly name orders that were sent, so they find live
// orders often; some name the wrong account or nothing.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "book/command.h"
#include "book/order_book.h"
#include "matching/exchange.h"

namespace venue::testing {

struct GeneratorShape {
  std::vector<InstrumentId> instruments{1, 2};
  Price low = 95;    // prices drawn from [low, high]: a narrow band, so orders cross often
  Price high = 105;
  std::uint32_t accounts = 20;
  std::uint32_t shards = 3;
  Quantity max_quantity = 20;
  int expire_per_mille = 2;  // session ends are rare
};

class CommandGenerator {
 public:
  explicit CommandGenerator(std::uint64_t seed, GeneratorShape shape = {}) : random_(seed), shape_(shape) {
    stream_seq_.assign(shape_.shards, 0);
    entry_index_.assign(shape_.shards, 0);
  }

  Command next() {
    const int kind = pick(0, 999);
    CommandOrigin origin;
    origin.shard = static_cast<std::uint32_t>(pick(0, static_cast<int>(shape_.shards) - 1));
    origin.stream_ms = 1'700'000'000'000;
    // One stream entry in four carries several commands (one request's batch): the
    // same stream id, rising entry_index.
    if (stream_seq_[origin.shard] > 0 && pick(0, 3) == 0) {
      origin.stream_seq = stream_seq_[origin.shard];
      origin.entry_index = ++entry_index_[origin.shard];
    } else {
      origin.stream_seq = ++stream_seq_[origin.shard];
      entry_index_[origin.shard] = 0;
    }
    const InstrumentId instrument = shape_.instruments[static_cast<std::size_t>(
        pick(0, static_cast<int>(shape_.instruments.size()) - 1))];
    if (kind < shape_.expire_per_mille) {
      return Command::make(origin, ExpireDay{pick(0, 3) == 0 ? InstrumentId{0} : instrument});
    }
    if (kind < 450 || sent_.empty()) return Command::make(origin, new_order(instrument));
    const Sent& target = sent_[static_cast<std::size_t>(pick(0, static_cast<int>(sent_.size()) - 1))];
    const AccountId account = pick(0, 19) == 0 ? target.account + 1 : target.account;
    const OrderId id = pick(0, 49) == 0 ? next_id_ + 1000 : target.id;
    if (kind < 700) return Command::make(origin, CancelOrder{id, account, target.instrument});
    ReplaceOrder replace;
    replace.order_id = id;
    replace.account_id = account;
    replace.instrument_id = target.instrument;
    // 0 keeps the order's term; a negative one is refused.
    const int price_kind = pick(0, 19);
    replace.price = price_kind < 7 ? target.price : price_kind < 10 ? 0 : price_kind == 10 ? -1 : price();
    const int quantity_kind = pick(0, 30);
    replace.quantity = quantity_kind == 0 ? -1 : quantity_kind < 4 ? 0 : pick(1, static_cast<int>(shape_.max_quantity));
    return Command::make(origin, replace);
  }

  std::vector<Command> batch(std::size_t count) {
    std::vector<Command> out;
    for (std::size_t i = 0; i < count; ++i) out.push_back(next());
    return out;
  }

 private:
  struct Sent {
    OrderId id;
    AccountId account;
    InstrumentId instrument;
    Price price;
  };

  int pick(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }
  Price price() { return pick(static_cast<int>(shape_.low), static_cast<int>(shape_.high)); }

  NewOrder new_order(InstrumentId instrument) {
    NewOrder order;
    order.order_id = ++next_id_;
    if (pick(0, 99) == 0 && next_id_ > 1) order.order_id = next_id_ - 1;  // a duplicate id now and then
    client_ids_.push_back("c" + std::to_string(next_id_));
    order.client_order_id = client_ids_.back();
    order.account_id = static_cast<AccountId>(pick(1, static_cast<int>(shape_.accounts)));
    order.instrument_id = instrument;
    order.side = pick(0, 1) == 0 ? Side::Buy : Side::Sell;
    const int form = pick(0, 99);
    order.type = form < 8 ? OrderType::Market : OrderType::Limit;
    order.price = order.type == OrderType::Market ? 0 : price();
    order.time_in_force = form < 8    ? TimeInForce::Ioc
                          : form < 55 ? TimeInForce::Gtc
                          : form < 72 ? TimeInForce::Day
                          : form < 86 ? TimeInForce::Ioc
                                      : TimeInForce::Fok;
    order.post_only = order.type == OrderType::Limit &&
                      (order.time_in_force == TimeInForce::Gtc || order.time_in_force == TimeInForce::Day) &&
                      pick(0, 9) == 0;
    order.quantity = pick(0, 60) == 0 ? 0 : pick(1, static_cast<int>(shape_.max_quantity));
    if (pick(0, 200) == 0) order.price = shape_.high + 1000;  // out of band
    sent_.push_back(Sent{order.order_id, order.account_id, instrument, order.price});
    if (sent_.size() > 400) sent_.erase(sent_.begin(), sent_.begin() + 100);
    return order;
  }

  std::mt19937_64 random_;
  GeneratorShape shape_;
  std::vector<std::uint64_t> stream_seq_;
  std::vector<std::uint32_t> entry_index_;
  std::vector<Sent> sent_;
  std::deque<std::string> client_ids_;  // what the commands' client_order_id views
  OrderId next_id_ = 0;
};

// An exchange's whole state as text: counters, marks, every resting order in priority
// order with every field. Two exchanges in the same state print the same.
inline std::string exchange_state_text(const Exchange& exchange) {
  std::ostringstream out;
  out << "next_sequence=" << exchange.next_sequence() << " next_trade_id=" << exchange.next_trade_id()
      << " commands=" << exchange.commands_applied() << "\n";
  exchange.shard_marks().for_each([&out](std::uint32_t shard, const StreamId& mark) {
    out << "mark " << shard << " " << mark.ms << "-" << mark.seq << "\n";
  });
  exchange.for_each_book([&out](const OrderBook& book) {
    for (Side side : {Side::Buy, Side::Sell}) {
      book.for_each_order(side, [&](const Order& o) {
        out << "book " << book.instrument().id << " side=" << int(side) << " id=" << o.id
            << " coid=" << o.client_order_id.view() << " acct=" << o.account_id << " type=" << int(o.type)
            << " tif=" << int(o.time_in_force) << " post=" << o.post_only << " px=" << o.price
            << " qty=" << o.quantity << " cum=" << o.cum_qty << " leaves=" << o.leaves_qty
            << " notional=" << o.cum_notional << "\n";
      });
    }
  });
  exchange.memory().done.for_each([&out](const DoneOrder& o) {
    out << "done " << o.instrument_id << " id=" << o.id << " status=" << int(o.status)
        << " coid=" << o.client_order_id.view() << " acct=" << o.account_id << " side=" << int(o.side)
        << " px=" << o.price << " qty=" << o.quantity << " cum=" << o.cum_qty << " notional=" << o.cum_notional
        << "\n";
  });
  return out.str();
}

}  // namespace venue::testing
