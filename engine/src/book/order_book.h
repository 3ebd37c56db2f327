// One instrument's book and its matching loop: price-time priority, commands in,
// events out through the partition's EventStream. No I/O, no threads, no exceptions
// on the way; orders and levels come from the partition's pools.
//
// Events of one command, in order: the order's own report (NEW, REPLACED, CANCELED or
// REJECTED); per fill a Trade, the maker's TRADE report, the taker's TRADE report; the
// CANCELED report of an IOC/market remainder; then one LevelUpdate per level the
// command changed, in the order they were first touched. Self-trade prevention cancels
// in the fill sequence, where the fill would have been: the resting order's CANCELED
// (cancel-oldest, cancel-both) before the incoming order's (cancel-newest, cancel-both),
// both with reject_reason SELF_TRADE.
#pragma once

#include <cstddef>
#include <vector>

#include "book/book_memory.h"
#include "book/command.h"
#include "book/event_stream.h"
#include "book/instrument.h"
#include "book/price_levels.h"

namespace venue {

class OrderBook {
 public:
  OrderBook(const Instrument& instrument, BookMemory& memory, EventStream& events,
            StpMode stp_mode = StpMode::CancelNewest);
  ~OrderBook();
  OrderBook(const OrderBook&) = delete;
  OrderBook& operator=(const OrderBook&) = delete;

  // The command's instrument_id must be this book's; the exchange routes by it.
  void new_order(const NewOrder& command);
  void cancel(const CancelOrder& command);
  void replace(const ReplaceOrder& command);
  // Session end: every resting DAY order expires (EXPIRED reports, priority order:
  // bids best first, then asks, FIFO within a level), then the level updates.
  void expire_day();

  void set_stp_mode(StpMode mode) { stp_mode_ = mode; }
  StpMode stp_mode() const { return stp_mode_; }

  // Recovery: rests a copy of `order` (as a snapshot saved it) at the back of its level,
  // with no event. Snapshots list orders in priority order, so the FIFO comes back as
  // it was. False when the order does not fit this book (wrong band, id taken).
  bool restore(const Order& order);

  const Instrument& instrument() const { return instrument_; }
  const PriceLevels& levels(Side side) const { return side == Side::Buy ? bids_ : asks_; }
  std::size_t order_count() const { return order_count_; }

  // Visits every resting order of one side in priority order (best level first, FIFO).
  template <typename F>
  void for_each_order(Side side, F&& visit) const {
    for_each_level(side, 0, [&visit](const PriceLevel& level) {
      for (const Order* order = level.orders.front(); order != nullptr; order = order->next) visit(*order);
    });
  }

  // Visits up to `depth` levels of one side, best first (0: every level).
  template <typename F>
  void for_each_level(Side side, std::size_t depth, F&& visit) const {
    const PriceLevels& side_levels = levels(side);
    std::size_t seen = 0;
    for (const PriceLevel* level = side_levels.best(); level != nullptr && (depth == 0 || seen < depth);
         level = side_levels.next_worse(level), ++seen) {
      visit(*level);
    }
  }

 private:
  struct TouchedLevel {
    Side side;
    Price price;
    bool existed_before;
  };

  PriceLevels& book_side(Side side) { return side == Side::Buy ? bids_ : asks_; }

  RejectReason check_new_order(const NewOrder& command) const;
  RejectReason check_quantity(Quantity quantity) const;
  bool would_take(Side side, Price price) const;
  Quantity fillable(const NewOrder& taker, Price limit) const;
  Order* find_own(OrderId order_id, AccountId account_id) const;
  // A cancel (CancelRejected) or replace (ReplaceRejected) of no live order of the
  // account: too late to cancel when the account's order is remembered done, else unknown.
  void reject_change(ExecType exec_type, OrderId order_id, AccountId account_id);
  // A new order refused; remembered as a done (rejected) order.
  void reject_new_order(const NewOrder& command, RejectReason reason);
  void take_terms(Order& order, const NewOrder& command) const;
  static OrderStatus final_status(const Order& order);

  void match(Order& taker, Price limit);
  void rest(Order& order);
  void unlink(Order& order);
  void cancel_self_trade(Order& order);
  void retire(Order& order, OrderStatus status);
  void touch(Side side, Price price, bool existed_before);
  void publish_level_updates();

  Instrument instrument_;
  BookMemory& memory_;
  EventStream& events_;
  PriceLevels bids_;
  PriceLevels asks_;
  StpMode stp_mode_;
  std::size_t order_count_ = 0;
  std::vector<TouchedLevel> touched_;  // levels changed by the command being applied
};

}  // namespace venue
