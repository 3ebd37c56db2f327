// Test support: the reference model. A partition's matching written as plainly as
// possible from the rules in README.md, with std::map and std::deque, no pools, no
// caches, no intrusive lists, no bitmaps: level totals are summed when asked for. It
// is slow and obviously right; the property test holds the engine to it event by event.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "book/command.h"
#include "book/event.h"
#include "book/instrument.h"
#include "matching/exchange.h"

namespace venue::testing {

class ReferenceExchange {
 public:
  // `done_capacity`: done orders remembered (ExchangeOptions::done_order_capacity).
  explicit ReferenceExchange(StpMode stp, std::size_t done_capacity = ExchangeOptions{}.done_order_capacity)
      : stp_(stp), done_capacity_(done_capacity) {}

  void add_instrument(const Instrument& instrument) { books_[instrument.id].instrument = instrument; }

  // Applies a command; returns the events it produced.
  std::vector<Event> apply(const Command& command, std::int64_t clock) {
    out_.clear();
    clock_ = clock;
    origin_ = command.origin;
    if (command.origin.stream_ms != 0 || command.origin.stream_seq != 0) {
      const std::tuple<std::uint64_t, std::uint64_t, std::uint32_t> id{command.origin.stream_ms, command.origin.stream_seq,
                                                                        command.origin.entry_index};
      auto mark = marks_.find(command.origin.shard);
      if (mark != marks_.end() && id <= mark->second) return out_;  // applied before
      marks_[command.origin.shard] = id;
    }
    switch (command.type) {
      case CommandType::New:
        if (books_.count(command.new_order.instrument_id) == 0) {
          reject_new(command.new_order, RejectReason::UnknownInstrument);
        } else {
          new_order(books_[command.new_order.instrument_id], command.new_order);
        }
        break;
      case CommandType::Cancel:
        if (books_.count(command.cancel.instrument_id) == 0) {
          reject_unknown(ExecType::CancelRejected, command.cancel.order_id, command.cancel.account_id,
                         command.cancel.instrument_id, RejectReason::UnknownInstrument);
        } else {
          cancel(books_[command.cancel.instrument_id], command.cancel);
        }
        break;
      case CommandType::Replace:
        if (books_.count(command.replace.instrument_id) == 0) {
          reject_unknown(ExecType::ReplaceRejected, command.replace.order_id, command.replace.account_id,
                         command.replace.instrument_id, RejectReason::UnknownInstrument);
        } else {
          replace(books_[command.replace.instrument_id], command.replace);
        }
        break;
      case CommandType::ExpireDay:
        if (command.expire_day.instrument_id == 0) {
          for (auto& [id, book] : books_) expire_day(book);  // std::map: ascending id
        } else if (books_.count(command.expire_day.instrument_id) == 0) {
          reject_unknown(ExecType::Rejected, 0, 0, command.expire_day.instrument_id, RejectReason::UnknownInstrument);
        } else {
          expire_day(books_[command.expire_day.instrument_id]);
        }
        break;
      case CommandType::Unknown:
        reject_unknown(ExecType::Rejected, 0, 0, 0, RejectReason::Unsupported);
        break;
    }
    return out_;
  }

  // (price, total, orders) per level, best first.
  std::vector<std::tuple<Price, Quantity, std::size_t>> levels(InstrumentId instrument, Side side) const {
    std::vector<std::tuple<Price, Quantity, std::size_t>> out;
    const Book& book = books_.at(instrument);
    auto add = [&](Price price, const std::deque<OrderId>& queue) {
      Quantity total = 0;
      for (OrderId id : queue) total += orders_.at(id).leaves_qty;
      out.emplace_back(price, total, queue.size());
    };
    if (side == Side::Buy) {
      for (auto it = book.bids.rbegin(); it != book.bids.rend(); ++it) add(it->first, it->second);
    } else {
      for (const auto& [price, queue] : book.asks) add(price, queue);
    }
    return out;
  }

  // Order ids at one price, in time priority.
  std::vector<OrderId> queue(InstrumentId instrument, Side side, Price price) const {
    const Book& book = books_.at(instrument);
    const auto& levels = side == Side::Buy ? book.bids : book.asks;
    auto it = levels.find(price);
    return it == levels.end() ? std::vector<OrderId>{} : std::vector<OrderId>(it->second.begin(), it->second.end());
  }

  std::uint64_t next_sequence() const { return next_sequence_; }
  std::uint64_t next_trade_id() const { return next_trade_id_; }
  std::size_t live_orders() const { return orders_.size(); }

 private:
  struct RefOrder {
    OrderId id = 0;
    std::string client_order_id;
    AccountId account = 0;
    InstrumentId instrument = 0;
    Side side = Side::Unspecified;
    OrderType type = OrderType::Unspecified;
    TimeInForce tif = TimeInForce::Unspecified;
    bool post_only = false;
    Price price = 0;
    Quantity quantity = 0;
    Quantity cum_qty = 0;
    Quantity leaves_qty = 0;
    std::int64_t cum_notional = 0;
    OrderStatus done_status = OrderStatus::Unspecified;  // set once done

    OrderStatus status() const {
      if (done_status != OrderStatus::Unspecified) return done_status;
      if (leaves_qty == 0 && cum_qty > 0) return OrderStatus::Filled;
      return cum_qty > 0 ? OrderStatus::PartiallyFilled : OrderStatus::New;
    }
  };

  struct Book {
    Instrument instrument;
    std::map<Price, std::deque<OrderId>> bids;  // best = highest = last
    std::map<Price, std::deque<OrderId>> asks;  // best = lowest = first
  };

  struct Touched {
    Side side;
    Price price;
    bool existed_before;
  };

  static std::map<Price, std::deque<OrderId>>& side_of(Book& book, Side side) {
    return side == Side::Buy ? book.bids : book.asks;
  }
  static bool rests(TimeInForce tif) { return tif == TimeInForce::Gtc || tif == TimeInForce::Day; }
  static bool crosses(Side taker, Price limit, Price level) { return taker == Side::Buy ? level <= limit : level >= limit; }

  // The opposite side's prices in priority order.
  static std::vector<Price> prices_best_first(Book& book, Side side) {
    std::vector<Price> out;
    for (const auto& [price, queue] : side_of(book, side)) out.push_back(price);
    if (side == Side::Buy) std::reverse(out.begin(), out.end());
    return out;
  }

  // ---- events ----

  void emit(Event event) {
    event.sequence = next_sequence_++;
    event.timestamp_ns = clock_;
    out_.push_back(event);
  }
  void stamp(ExecutionReport& r) const {
    r.shard = origin_.shard;
    r.stream_ms = origin_.stream_ms;
    r.stream_seq = origin_.stream_seq;
  }
  static void copy(ExecutionReport& r, const RefOrder& o) {
    r.order_id = o.id;
    r.client_order_id.assign(o.client_order_id);
    r.account_id = o.account;
    r.instrument_id = o.instrument;
    r.side = o.side;
    r.type = o.type;
    r.time_in_force = o.tif;
    r.post_only = o.post_only;
    r.price = o.price;
    r.quantity = o.quantity;
    r.cum_qty = o.cum_qty;
    r.leaves_qty = o.leaves_qty;
    r.cum_notional = o.cum_notional;
  }
  void report(const RefOrder& o, ExecType exec, OrderStatus status, RejectReason reason = RejectReason::None,
              Quantity last_qty = 0, Price last_px = 0, std::uint64_t trade_id = 0) {
    Event event;
    event.type = EventType::Report;
    copy(event.report, o);
    event.report.exec_type = exec;
    event.report.order_status = status;
    event.report.reject_reason = reason;
    event.report.last_qty = last_qty;
    event.report.last_px = last_px;
    event.report.trade_id = trade_id;
    stamp(event.report);
    emit(event);
  }
  void reject_new(const NewOrder& c, RejectReason reason) {
    Event event;
    event.type = EventType::Report;
    ExecutionReport& r = event.report;
    r.order_id = c.order_id;
    r.client_order_id.assign(c.client_order_id);
    r.account_id = c.account_id;
    r.instrument_id = c.instrument_id;
    r.side = c.side;
    r.type = c.type;
    r.time_in_force = c.time_in_force;
    r.post_only = c.post_only;
    r.price = c.price;
    r.quantity = c.quantity;
    r.exec_type = ExecType::Rejected;
    r.order_status = OrderStatus::Rejected;
    r.reject_reason = reason;
    stamp(r);
    emit(event);
  }
  void reject_unknown(ExecType exec, OrderId id, AccountId account, InstrumentId instrument, RejectReason reason) {
    Event event;
    event.type = EventType::Report;
    ExecutionReport& r = event.report;
    r.order_id = id;
    r.account_id = account;
    r.instrument_id = instrument;
    r.exec_type = exec;
    r.order_status = OrderStatus::Rejected;
    r.reject_reason = reason;
    stamp(r);
    emit(event);
  }
  // A refused cancel or replace of the account's order: live (unchanged, `reason`),
  // done (too late), or unknown.
  void reject_change(ExecType exec, const Book& book, OrderId id, AccountId account, const RefOrder* live,
                     RejectReason reason) {
    if (live != nullptr) return report(*live, exec, live->status(), reason);
    auto done = done_capacity_ == 0 ? done_.end() : done_.find(id % std::bit_ceil(done_capacity_));
    if (done != done_.end() && done->second.id == id && done->second.account == account &&
        done->second.instrument == book.instrument.id) {
      return report(done->second, exec, done->second.done_status, RejectReason::TooLateToCancel);
    }
    reject_unknown(exec, id, account, book.instrument.id, RejectReason::UnknownOrder);
  }

  // A done order: remembered in its slot (its id modulo the capacity, a power of two),
  // where it takes the place of the one before.
  void remember(RefOrder order, OrderStatus status) {
    order.done_status = status;
    order.leaves_qty = 0;
    if (done_capacity_ > 0) done_[order.id % std::bit_ceil(done_capacity_)] = order;
  }
  // A live order is done: remembered, and no longer live.
  void finish(const RefOrder& order, OrderStatus status) {
    const OrderId id = order.id;
    remember(order, status);
    orders_.erase(id);
  }
  static OrderStatus final_status(const RefOrder& order) {
    return order.cum_qty == order.quantity ? OrderStatus::Filled : OrderStatus::Canceled;
  }

  // ---- levels touched by the command, reported at its end ----

  void touch(Book& book, Side side, Price price) {
    for (const Touched& t : touched_) {
      if (t.side == side && t.price == price) return;
    }
    touched_.push_back(Touched{side, price, side_of(book, side).count(price) > 0});
  }
  void publish(Book& book) {
    for (const Touched& t : touched_) {
      auto& levels = side_of(book, t.side);
      const bool exists = levels.count(t.price) > 0;
      if (!exists && !t.existed_before) continue;
      Event event;
      event.type = EventType::Level;
      event.level.instrument_id = book.instrument.id;
      event.level.side = t.side;
      event.level.price = t.price;
      event.level.quantity = 0;
      if (exists) {
        for (OrderId id : levels.at(t.price)) event.level.quantity += orders_.at(id).leaves_qty;
      }
      event.level.action = !exists ? LevelAction::Delete : (t.existed_before ? LevelAction::Change : LevelAction::Add);
      emit(event);
    }
    touched_.clear();
  }

  // ---- book changes ----

  void rest(Book& book, RefOrder& order) {
    touch(book, order.side, order.price);
    side_of(book, order.side)[order.price].push_back(order.id);
  }
  void take_off(Book& book, const RefOrder& order) {
    touch(book, order.side, order.price);
    auto& levels = side_of(book, order.side);
    auto& queue = levels.at(order.price);
    queue.erase(std::find(queue.begin(), queue.end(), order.id));
    if (queue.empty()) levels.erase(order.price);
  }

  // ---- commands ----

  RejectReason check_quantity(const Book& book, Quantity q) const {
    if (q <= 0 || q > kMaxOrderQuantity || q > std::numeric_limits<std::int64_t>::max() / book.instrument.max_price) {
      return RejectReason::InvalidQuantity;
    }
    return RejectReason::None;
  }

  RejectReason check_new(const Book& book, const NewOrder& c) const {
    const bool side_ok = c.side == Side::Buy || c.side == Side::Sell;
    const bool type_ok = c.type == OrderType::Limit || c.type == OrderType::Market;
    const bool tif_ok = c.time_in_force == TimeInForce::Gtc || c.time_in_force == TimeInForce::Ioc ||
                        c.time_in_force == TimeInForce::Fok || c.time_in_force == TimeInForce::Day;
    if (!side_ok || !type_ok || !tif_ok) return RejectReason::Unsupported;
    if (c.client_order_id.size() > 63) return RejectReason::Unsupported;
    if (RejectReason r = check_quantity(book, c.quantity); r != RejectReason::None) return r;
    if (c.type == OrderType::Market) {
      if (c.price != 0) return RejectReason::InvalidPrice;
      if (c.post_only) return RejectReason::Unsupported;
    } else {
      if (c.price <= 0) return RejectReason::InvalidPrice;
      if (c.price < book.instrument.min_price || c.price > book.instrument.max_price) return RejectReason::PriceOutOfBand;
      if (c.post_only && !rests(c.time_in_force)) return RejectReason::Unsupported;
    }
    if (orders_.count(c.order_id) > 0) return RejectReason::DuplicateOrderId;
    return RejectReason::None;
  }

  bool would_take(Book& book, Side side, Price price) {
    const auto best = prices_best_first(book, side == Side::Buy ? Side::Sell : Side::Buy);
    return !best.empty() && crosses(side, price, best.front());
  }

  // What the taker could fill, walking the orders it would meet in priority order.
  Quantity fillable(Book& book, Side side, AccountId account, Price limit, Quantity wanted) {
    const Side other = side == Side::Buy ? Side::Sell : Side::Buy;
    Quantity available = 0;
    for (Price price : prices_best_first(book, other)) {
      if (!crosses(side, limit, price)) break;
      for (OrderId id : side_of(book, other).at(price)) {
        const RefOrder& maker = orders_.at(id);
        if (maker.account == account) {
          if (stp_ == StpMode::CancelOldest) continue;
          return available;
        }
        available += maker.leaves_qty;
        if (available >= wanted) return available;
      }
    }
    return available;
  }

  void match(Book& book, RefOrder& taker, Price limit) {
    const Side other = taker.side == Side::Buy ? Side::Sell : Side::Buy;
    while (taker.leaves_qty > 0) {
      const auto prices = prices_best_first(book, other);
      if (prices.empty() || !crosses(taker.side, limit, prices.front())) return;
      const Price price = prices.front();
      while (taker.leaves_qty > 0 && side_of(book, other).count(price) > 0) {
        RefOrder& maker = orders_.at(side_of(book, other).at(price).front());
        if (maker.account == taker.account) {
          if (stp_ == StpMode::CancelOldest || stp_ == StpMode::CancelBoth) {
            take_off(book, maker);
            maker.leaves_qty = 0;
            report(maker, ExecType::Canceled, OrderStatus::Canceled, RejectReason::SelfTrade);
            finish(maker, OrderStatus::Canceled);
          }
          if (stp_ == StpMode::CancelNewest || stp_ == StpMode::CancelBoth) {
            taker.leaves_qty = 0;
            report(taker, ExecType::Canceled, OrderStatus::Canceled, RejectReason::SelfTrade);
          }
          continue;
        }
        touch(book, other, price);
        const Quantity q = std::min(taker.leaves_qty, maker.leaves_qty);
        maker.cum_qty += q;
        maker.leaves_qty -= q;
        maker.cum_notional += q * price;
        taker.cum_qty += q;
        taker.leaves_qty -= q;
        taker.cum_notional += q * price;
        Event trade;
        trade.type = EventType::Trade;
        trade.trade.trade_id = next_trade_id_++;
        trade.trade.instrument_id = book.instrument.id;
        trade.trade.price = price;
        trade.trade.quantity = q;
        trade.trade.buy_order_id = taker.side == Side::Buy ? taker.id : maker.id;
        trade.trade.sell_order_id = taker.side == Side::Buy ? maker.id : taker.id;
        trade.trade.aggressor_side = taker.side;
        emit(trade);
        report(maker, ExecType::Trade, maker.status(), RejectReason::None, q, price, trade.trade.trade_id);
        report(taker, ExecType::Trade, taker.status(), RejectReason::None, q, price, trade.trade.trade_id);
        if (maker.leaves_qty == 0) {
          auto& queue = side_of(book, other).at(price);
          queue.pop_front();
          if (queue.empty()) side_of(book, other).erase(price);
          finish(maker, OrderStatus::Filled);
        }
      }
    }
  }

  RefOrder order_of(const Book& book, const NewOrder& c) {
    RefOrder order;
    order.id = c.order_id;
    order.client_order_id = std::string(c.client_order_id.substr(0, 63));
    order.account = c.account_id;
    order.instrument = book.instrument.id;
    order.side = c.side;
    order.type = c.type;
    order.tif = c.time_in_force;
    order.post_only = c.post_only;
    order.price = c.price;
    order.quantity = c.quantity;
    return order;
  }

  // A new order refused, remembered as done (rejected) unless its id is another's.
  void refuse_new(const Book& book, const NewOrder& c, RejectReason reason) {
    reject_new(c, reason);
    if (reason != RejectReason::DuplicateOrderId) remember(order_of(book, c), OrderStatus::Rejected);
  }

  void new_order(Book& book, const NewOrder& c) {
    if (RejectReason r = check_new(book, c); r != RejectReason::None) return refuse_new(book, c, r);
    const bool market = c.type == OrderType::Market;
    const Price limit = market ? (c.side == Side::Buy ? book.instrument.max_price : book.instrument.min_price) : c.price;
    if (c.post_only && would_take(book, c.side, limit)) return refuse_new(book, c, RejectReason::WouldTakeLiquidity);
    if (c.time_in_force == TimeInForce::Fok && fillable(book, c.side, c.account_id, limit, c.quantity) < c.quantity) {
      return refuse_new(book, c, RejectReason::FokNotFillable);
    }
    RefOrder order = order_of(book, c);
    order.leaves_qty = c.quantity;
    report(order, ExecType::New, OrderStatus::New);
    match(book, order, limit);
    if (order.leaves_qty == 0) {
      finish(order, final_status(order));
    } else if (market || !rests(order.tif)) {
      order.leaves_qty = 0;
      report(order, ExecType::Canceled, OrderStatus::Canceled, market ? RejectReason::NoLiquidity : RejectReason::None);
      finish(order, OrderStatus::Canceled);
    } else {
      orders_[order.id] = order;
      rest(book, orders_[order.id]);
    }
    publish(book);
  }

  RefOrder* find_own(Book& book, OrderId id, AccountId account) {
    auto it = orders_.find(id);
    if (it == orders_.end() || it->second.account != account || it->second.instrument != book.instrument.id) {
      return nullptr;
    }
    return &it->second;
  }

  void cancel(Book& book, const CancelOrder& c) {
    RefOrder* order = find_own(book, c.order_id, c.account_id);
    if (order == nullptr) return reject_change(ExecType::CancelRejected, book, c.order_id, c.account_id, nullptr, {});
    take_off(book, *order);
    order->leaves_qty = 0;
    report(*order, ExecType::Canceled, OrderStatus::Canceled);
    finish(*order, OrderStatus::Canceled);
    publish(book);
  }

  void replace(Book& book, const ReplaceOrder& c) {
    RefOrder* order = find_own(book, c.order_id, c.account_id);
    if (order == nullptr) return reject_change(ExecType::ReplaceRejected, book, c.order_id, c.account_id, nullptr, {});
    const Price price = c.price == 0 ? order->price : c.price;  // 0: unchanged
    const Quantity quantity = c.quantity == 0 ? order->quantity : c.quantity;
    RejectReason reason = check_quantity(book, quantity);
    if (reason == RejectReason::None) {
      if (price <= 0) {
        reason = RejectReason::InvalidPrice;
      } else if (price < book.instrument.min_price || price > book.instrument.max_price) {
        reason = RejectReason::PriceOutOfBand;
      } else if (quantity <= order->cum_qty) {
        reason = RejectReason::ReplaceBelowFilled;
      } else if (order->post_only && price != order->price && would_take(book, order->side, price)) {
        reason = RejectReason::WouldTakeLiquidity;
      }
    }
    if (reason != RejectReason::None) {
      return reject_change(ExecType::ReplaceRejected, book, c.order_id, c.account_id, order, reason);
    }
    if (price == order->price && quantity <= order->quantity) {
      // Less (or the same) at the same price: stays where it is in the queue.
      const Quantity reduction = order->quantity - quantity;
      if (reduction > 0) touch(book, order->side, order->price);
      order->quantity = quantity;
      order->leaves_qty -= reduction;
      report(*order, ExecType::Replaced, order->status());
      return publish(book);
    }
    // Anything else: out of the queue, and in again as if new (taking what it crosses).
    take_off(book, *order);
    RefOrder moved = *order;
    orders_.erase(c.order_id);
    moved.price = price;
    moved.quantity = quantity;
    moved.leaves_qty = quantity - moved.cum_qty;
    report(moved, ExecType::Replaced, moved.status());
    match(book, moved, moved.price);
    if (moved.leaves_qty > 0) {
      orders_[moved.id] = moved;
      rest(book, orders_[moved.id]);
    } else {
      finish(moved, final_status(moved));
    }
    publish(book);
  }

  void expire_day(Book& book) {
    for (Side side : {Side::Buy, Side::Sell}) {
      for (Price price : prices_best_first(book, side)) {
        const std::deque<OrderId> queue = side_of(book, side).at(price);
        for (OrderId id : queue) {
          RefOrder& order = orders_.at(id);
          if (order.tif != TimeInForce::Day) continue;
          take_off(book, order);
          order.leaves_qty = 0;
          report(order, ExecType::Expired, OrderStatus::Expired);
          finish(order, OrderStatus::Expired);
        }
      }
    }
    publish(book);
  }

  StpMode stp_;
  std::map<InstrumentId, Book> books_;
  std::map<OrderId, RefOrder> orders_;  // live orders of every instrument
  std::size_t done_capacity_;
  std::map<OrderId, RefOrder> done_;    // slot -> the done order last remembered there
  std::map<std::uint32_t, std::tuple<std::uint64_t, std::uint64_t, std::uint32_t>> marks_;
  std::vector<Touched> touched_;
  std::vector<Event> out_;
  std::uint64_t next_sequence_ = 1;
  std::uint64_t next_trade_id_ = 1;
  std::int64_t clock_ = 0;
  CommandOrigin origin_;
};

}  // namespace venue::testing
