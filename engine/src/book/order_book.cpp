#include "book/order_book.h"

#include <algorithm>
#include <limits>

namespace venue {

namespace {

bool known(Side side) { return side == Side::Buy || side == Side::Sell; }
bool known(OrderType type) { return type == OrderType::Limit || type == OrderType::Market; }
bool known(TimeInForce tif) {
  return tif == TimeInForce::Gtc || tif == TimeInForce::Ioc || tif == TimeInForce::Fok || tif == TimeInForce::Day;
}
bool rests(TimeInForce tif) { return tif == TimeInForce::Gtc || tif == TimeInForce::Day; }

// A taker at `limit` trades with a level at `level_price` on the other side.
bool crosses(Side taker_side, Price limit, Price level_price) {
  return taker_side == Side::Buy ? level_price <= limit : level_price >= limit;
}

}  // namespace

OrderBook::OrderBook(const Instrument& instrument, BookMemory& memory, EventStream& events, StpMode stp_mode)
    : instrument_(instrument),
      memory_(memory),
      events_(events),
      bids_(Side::Buy, instrument.min_price, instrument.max_price, memory.levels),
      asks_(Side::Sell, instrument.min_price, instrument.max_price, memory.levels),
      stp_mode_(stp_mode) {
  touched_.reserve(1024);  // a sweep through more levels grows it once, then never again
}

OrderBook::~OrderBook() {
  for (PriceLevels* side : {&bids_, &asks_}) {
    while (PriceLevel* level = side->best()) {
      while (Order* order = level->orders.front()) {
        level->orders.erase(order);
        memory_.live_orders.erase(order->id);
        memory_.orders.release(order);
      }
      side->erase(level);
    }
  }
}

// ---- validation (the engine never trusts the gateway) ----

RejectReason OrderBook::check_quantity(Quantity quantity) const {
  // The second bound keeps any notional of this order (price * quantity) within int64.
  if (quantity <= 0 || quantity > kMaxOrderQuantity ||
      quantity > std::numeric_limits<std::int64_t>::max() / instrument_.max_price) {
    return RejectReason::InvalidQuantity;
  }
  return RejectReason::None;
}

RejectReason OrderBook::check_new_order(const NewOrder& command) const {
  if (!known(command.side) || !known(command.type) || !known(command.time_in_force)) {
    return RejectReason::Unsupported;
  }
  if (command.client_order_id.size() > ClientOrderId::kMaxLength) return RejectReason::Unsupported;
  if (RejectReason reason = check_quantity(command.quantity); reason != RejectReason::None) return reason;
  if (command.type == OrderType::Market) {
    if (command.price != 0) return RejectReason::InvalidPrice;
    if (command.post_only) return RejectReason::Unsupported;  // a market order only takes
  } else {
    if (command.price <= 0) return RejectReason::InvalidPrice;
    if (command.price < instrument_.min_price || command.price > instrument_.max_price) {
      return RejectReason::PriceOutOfBand;
    }
    if (command.post_only && !rests(command.time_in_force)) return RejectReason::Unsupported;
  }
  if (memory_.live_orders.find(command.order_id) != nullptr) return RejectReason::DuplicateOrderId;
  return RejectReason::None;
}

bool OrderBook::would_take(Side side, Price price) const {
  const PriceLevel* best = levels(opposite(side)).best();
  return best != nullptr && crosses(side, price, best->price);
}

Quantity OrderBook::fillable(const NewOrder& taker, Price limit) const {
  // Walks orders, not levels: under self-trade prevention the taker's own resting
  // orders fill nothing, and under cancel-newest/cancel-both the first of them ends the
  // match, so what lies behind it is out of reach. FOK is rare; the walk stops once
  // enough is found.
  const PriceLevels& other = levels(opposite(taker.side));
  Quantity available = 0;
  for (const PriceLevel* level = other.best(); level != nullptr && crosses(taker.side, limit, level->price);
       level = other.next_worse(level)) {
    for (const Order* maker = level->orders.front(); maker != nullptr; maker = maker->next) {
      if (maker->account_id == taker.account_id) {
        if (stp_mode_ == StpMode::CancelOldest) continue;
        return available;
      }
      available += maker->leaves_qty;
      if (available >= taker.quantity) return available;
    }
  }
  return available;
}

Order* OrderBook::find_own(OrderId order_id, AccountId account_id) const {
  Order* order = memory_.live_orders.find(order_id);
  if (order == nullptr || order->account_id != account_id || order->instrument_id != instrument_.id) return nullptr;
  return order;
}

void OrderBook::reject_change(ExecType exec_type, OrderId order_id, AccountId account_id) {
  const DoneOrder* done = memory_.done.find(order_id);
  if (done != nullptr && done->account_id == account_id && done->instrument_id == instrument_.id) {
    events_.report(done->order(), exec_type, done->status, RejectReason::TooLateToCancel);
  } else {
    events_.reject_unknown_order(exec_type, order_id, account_id, instrument_.id, RejectReason::UnknownOrder);
  }
}

void OrderBook::reject_new_order(const NewOrder& command, RejectReason reason) {
  events_.reject_new_order(command, reason);
  if (reason == RejectReason::DuplicateOrderId) return;  // the id is a live order's
  // Remembered like any done order: a cancel that follows it is too late, not unknown.
  Order order;
  take_terms(order, command);
  memory_.done.remember(order, OrderStatus::Rejected);
}

// The new order's terms into `order` (nothing filled, nothing left: that is the caller's).
void OrderBook::take_terms(Order& order, const NewOrder& command) const {
  order.id = command.order_id;
  order.client_order_id.assign(command.client_order_id);
  order.account_id = command.account_id;
  order.instrument_id = instrument_.id;
  order.side = command.side;
  order.type = command.type;
  order.time_in_force = command.time_in_force;
  order.post_only = command.post_only;
  order.price = command.price;
  order.quantity = command.quantity;
}

// ---- commands ----

void OrderBook::new_order(const NewOrder& command) {
  if (RejectReason reason = check_new_order(command); reason != RejectReason::None) {
    reject_new_order(command, reason);
    return;
  }
  const bool market = command.type == OrderType::Market;
  // Every resting price lies in the band, so a market order's limit is the band's edge.
  const Price limit = market ? (command.side == Side::Buy ? instrument_.max_price : instrument_.min_price)
                             : command.price;
  if (command.post_only && would_take(command.side, limit)) {
    reject_new_order(command, RejectReason::WouldTakeLiquidity);
    return;
  }
  if (command.time_in_force == TimeInForce::Fok && fillable(command, limit) < command.quantity) {
    reject_new_order(command, RejectReason::FokNotFillable);
    return;
  }

  Order& order = *memory_.orders.acquire();
  take_terms(order, command);
  order.leaves_qty = command.quantity;
  events_.report(order, ExecType::New, OrderStatus::New);

  match(order, limit);
  if (order.leaves_qty == 0) {
    // Filled or self-trade canceled: its last report said so.
    memory_.done.remember(order, final_status(order));
    memory_.orders.release(&order);
  } else if (market || !rests(order.time_in_force)) {
    order.leaves_qty = 0;
    events_.report(order, ExecType::Canceled, OrderStatus::Canceled,
                   market ? RejectReason::NoLiquidity : RejectReason::None);
    memory_.done.remember(order, OrderStatus::Canceled);
    memory_.orders.release(&order);
  } else {
    memory_.live_orders.insert(order.id, &order);
    rest(order);
  }
  publish_level_updates();
}

void OrderBook::cancel(const CancelOrder& command) {
  Order* order = find_own(command.order_id, command.account_id);
  if (order == nullptr) {
    reject_change(ExecType::CancelRejected, command.order_id, command.account_id);
    return;
  }
  unlink(*order);
  order->leaves_qty = 0;
  events_.report(*order, ExecType::Canceled, OrderStatus::Canceled);
  retire(*order, OrderStatus::Canceled);
  publish_level_updates();
}

void OrderBook::replace(const ReplaceOrder& command) {
  Order* order = find_own(command.order_id, command.account_id);
  if (order == nullptr) {
    reject_change(ExecType::ReplaceRejected, command.order_id, command.account_id);
    return;
  }
  // A term given as 0 is the order's own: a replace names only what it changes, and the
  // rest is the order's as it stands here, after every replace before it.
  const Price price = command.price == 0 ? order->price : command.price;
  const Quantity quantity = command.quantity == 0 ? order->quantity : command.quantity;
  RejectReason reason = check_quantity(quantity);
  if (reason != RejectReason::None) {
  } else if (price <= 0) {
    reason = RejectReason::InvalidPrice;
  } else if (price < instrument_.min_price || price > instrument_.max_price) {
    reason = RejectReason::PriceOutOfBand;
  } else if (quantity <= order->cum_qty) {
    reason = RejectReason::ReplaceBelowFilled;
  } else if (order->post_only && price != order->price && would_take(order->side, price)) {
    reason = RejectReason::WouldTakeLiquidity;  // post-only is never repriced, nor made to take
  }
  if (reason != RejectReason::None) {
    events_.report(*order, ExecType::ReplaceRejected, order->status(), reason);  // unchanged, it lives on
    return;
  }

  if (price == order->price && quantity <= order->quantity) {
    // Same price, no more quantity: amended in place, time priority kept.
    const Quantity reduction = order->quantity - quantity;
    order->quantity = quantity;
    order->leaves_qty -= reduction;
    if (reduction > 0) {
      touch(order->side, order->price, true);
      order->level->quantity -= reduction;
    }
    events_.report(*order, ExecType::Replaced, order->status());
    publish_level_updates();
    return;
  }

  // A new price or more quantity: priority lost, the order re-enters as if new and
  // takes whatever its new price crosses.
  unlink(*order);
  order->price = price;
  order->quantity = quantity;
  order->leaves_qty = quantity - order->cum_qty;
  events_.report(*order, ExecType::Replaced, order->status());
  match(*order, order->price);
  if (order->leaves_qty == 0) {
    retire(*order, final_status(*order));
  } else {
    rest(*order);
  }
  publish_level_updates();
}

void OrderBook::expire_day() {
  for (PriceLevels* side : {&bids_, &asks_}) {
    PriceLevel* level = side->best();
    while (level != nullptr) {
      PriceLevel* next_level = side->next_worse(level);  // found first: `level` may be erased
      for (Order* order = level->orders.front(); order != nullptr;) {
        Order* next = order->next;
        if (order->time_in_force == TimeInForce::Day) {
          unlink(*order);
          order->leaves_qty = 0;
          events_.report(*order, ExecType::Expired, OrderStatus::Expired);
          retire(*order, OrderStatus::Expired);
        }
        order = next;
      }
      level = next_level;
    }
  }
  publish_level_updates();
}

bool OrderBook::restore(const Order& saved) {
  if (saved.price < instrument_.min_price || saved.price > instrument_.max_price || saved.leaves_qty <= 0 ||
      (saved.side != Side::Buy && saved.side != Side::Sell) || memory_.live_orders.find(saved.id) != nullptr) {
    return false;
  }
  Order& order = *memory_.orders.acquire();
  order = saved;
  order.prev = order.next = nullptr;
  order.level = nullptr;
  order.instrument_id = instrument_.id;
  memory_.live_orders.insert(order.id, &order);
  rest(order);
  touched_.clear();  // recovery publishes nothing
  return true;
}

// ---- the matching loop ----

void OrderBook::match(Order& taker, Price limit) {
  PriceLevels& other = book_side(opposite(taker.side));
  while (taker.leaves_qty > 0) {
    PriceLevel* level = other.best();
    if (level == nullptr || !crosses(taker.side, limit, level->price)) break;
    // Recorded once per level (swept levels are distinct), and only when the level
    // changes: a taker stopped by self-trade prevention at its first order leaves it as is.
    bool level_touched = false;
    auto touch_level = [&] {
      if (!level_touched) touched_.push_back(TouchedLevel{other.side(), level->price, true});
      level_touched = true;
    };
    while (taker.leaves_qty > 0 && !level->orders.empty()) {
      Order& maker = *level->orders.front();
      if (maker.account_id == taker.account_id) {
        if (stp_mode_ != StpMode::CancelNewest) {
          touch_level();
          cancel_self_trade(maker);
        }
        if (stp_mode_ != StpMode::CancelOldest) {
          taker.leaves_qty = 0;
          events_.report(taker, ExecType::Canceled, OrderStatus::Canceled, RejectReason::SelfTrade);
        }
        continue;
      }
      touch_level();
      const Quantity quantity = std::min(taker.leaves_qty, maker.leaves_qty);
      const Price price = maker.price;
      const std::int64_t notional = quantity * price;
      maker.cum_qty += quantity;
      maker.leaves_qty -= quantity;
      maker.cum_notional += notional;
      taker.cum_qty += quantity;
      taker.leaves_qty -= quantity;
      taker.cum_notional += notional;
      level->quantity -= quantity;

      Trade trade;
      trade.trade_id = events_.take_trade_id();
      trade.instrument_id = instrument_.id;
      trade.price = price;
      trade.quantity = quantity;
      trade.buy_order_id = taker.side == Side::Buy ? taker.id : maker.id;
      trade.sell_order_id = taker.side == Side::Buy ? maker.id : taker.id;
      trade.aggressor_side = taker.side;
      events_.trade(trade);
      events_.report(maker, ExecType::Trade, maker.status(), RejectReason::None, quantity, price, trade.trade_id);
      events_.report(taker, ExecType::Trade, taker.status(), RejectReason::None, quantity, price, trade.trade_id);

      if (maker.leaves_qty == 0) {
        level->orders.erase(&maker);
        --level->order_count;
        --order_count_;
        retire(maker, OrderStatus::Filled);
      }
    }
    if (level->orders.empty()) other.erase(level);
  }
}

// A resting order canceled by self-trade prevention, in the middle of a match: off its
// level (which the caller has recorded as touched) and out of the book.
void OrderBook::cancel_self_trade(Order& order) {
  PriceLevel* level = order.level;
  level->orders.erase(&order);
  level->quantity -= order.leaves_qty;
  --level->order_count;
  --order_count_;
  order.level = nullptr;
  order.leaves_qty = 0;
  events_.report(order, ExecType::Canceled, OrderStatus::Canceled, RejectReason::SelfTrade);
  retire(order, OrderStatus::Canceled);
}

void OrderBook::rest(Order& order) {
  PriceLevels& own = book_side(order.side);
  PriceLevel* level = own.find(order.price);
  touch(order.side, order.price, level != nullptr);
  if (level == nullptr) level = own.find_or_insert(order.price);
  level->orders.push_back(&order);
  level->quantity += order.leaves_qty;
  ++level->order_count;
  order.level = level;
  ++order_count_;
}

// Takes a resting order off its level (the order stays live in the id map).
void OrderBook::unlink(Order& order) {
  PriceLevel* level = order.level;
  touch(order.side, level->price, true);
  level->orders.erase(&order);
  level->quantity -= order.leaves_qty;
  --level->order_count;
  --order_count_;
  order.level = nullptr;
  if (level->orders.empty()) book_side(order.side).erase(level);
}

// A live order that is done, its last report emitted: remembered as done, forgotten as
// live, and returned to the pool.
void OrderBook::retire(Order& order, OrderStatus status) {
  memory_.done.remember(order, status);
  memory_.live_orders.erase(order.id);
  memory_.orders.release(&order);
}

// The status of an order off every level with nothing left: filled, or its remainder
// canceled by self-trade prevention.
OrderStatus OrderBook::final_status(const Order& order) {
  return order.cum_qty == order.quantity ? OrderStatus::Filled : OrderStatus::Canceled;
}

// ---- market data ----

void OrderBook::touch(Side side, Price price, bool existed_before) {
  // Only a replace touches a level twice (leaving and rejoining one price); the search
  // runs for the taker's own side, at most twice per command, so it stays O(levels).
  for (auto it = touched_.rbegin(); it != touched_.rend(); ++it) {
    if (it->side == side && it->price == price) return;
  }
  touched_.push_back(TouchedLevel{side, price, existed_before});
}

void OrderBook::publish_level_updates() {
  for (const TouchedLevel& touched : touched_) {
    const PriceLevel* level = levels(touched.side).find(touched.price);
    if (level == nullptr && !touched.existed_before) continue;  // came and went unseen
    LevelUpdate update;
    update.instrument_id = instrument_.id;
    update.side = touched.side;
    update.price = touched.price;
    update.quantity = level != nullptr ? level->quantity : 0;
    update.action = level == nullptr ? LevelAction::Delete
                                     : (touched.existed_before ? LevelAction::Change : LevelAction::Add);
    events_.level(update);
  }
  touched_.clear();
}

}  // namespace venue
