// Orders that are done (filled, canceled, expired, rejected), remembered a while after
// their last report: a cancel or replace that arrives after the fact, the commonest race
// a venue sees, is then answered with the order's real state (too late to cancel), and
// the engine can be asked about any recent order.
//
// A table of fixed size, indexed by order id modulo its size: a done order is
// remembered until an order whose id is the same modulo the size is done after it. The
// gateway gives out ids densely, so that is about the last `size` orders. Remembering
// is one write of one slot, where a FIFO with an id map cost a map insert and erase per
// order and the cache lines they touch (a fifth of the mixed benchmark's speed).
#pragma once

#include <bit>
#include <cstddef>

#include "book/order.h"
#include "book/page_memory.h"

namespace venue {

struct DoneOrder {
  OrderId id = 0;
  AccountId account_id = 0;
  Price price = 0;
  Quantity quantity = 0;
  Quantity cum_qty = 0;
  std::int64_t cum_notional = 0;
  InstrumentId instrument_id = 0;
  Side side = Side::Unspecified;
  OrderType type = OrderType::Unspecified;
  TimeInForce time_in_force = TimeInForce::Unspecified;
  bool post_only = false;
  OrderStatus status = OrderStatus::Unspecified;  // Unspecified: an empty slot
  ClientOrderId client_order_id;

  // The order as its last report stated it (leaves 0), for reports and queries.
  Order order() const {
    Order out;
    out.id = id;
    out.account_id = account_id;
    out.price = price;
    out.quantity = quantity;
    out.cum_qty = cum_qty;
    out.cum_notional = cum_notional;
    out.instrument_id = instrument_id;
    out.side = side;
    out.type = type;
    out.time_in_force = time_in_force;
    out.post_only = post_only;
    out.client_order_id = client_order_id;
    return out;
  }
};

class DoneOrders {
 public:
  // `capacity` is rounded up to a power of two; 0 remembers nothing.
  explicit DoneOrders(std::size_t capacity, HugePages hugepages = HugePages::Try)
      : slots_(capacity == 0 ? 0 : std::bit_ceil(capacity), hugepages), mask_(slots_.size() - 1) {}

  std::size_t capacity() const { return slots_.size(); }
  std::size_t size() const { return size_; }

  void remember(const Order& order, OrderStatus status) {
    if (slots_.size() == 0) return;
    DoneOrder& slot = slots_[order.id & mask_];
    if (slot.status == OrderStatus::Unspecified) ++size_;
    slot.id = order.id;
    slot.account_id = order.account_id;
    slot.price = order.price;
    slot.quantity = order.quantity;
    slot.cum_qty = order.cum_qty;
    slot.cum_notional = order.cum_notional;
    slot.instrument_id = order.instrument_id;
    slot.side = order.side;
    slot.type = order.type;
    slot.time_in_force = order.time_in_force;
    slot.post_only = order.post_only;
    slot.status = status;
    slot.client_order_id = order.client_order_id;
  }

  // Recovery: a done order as a snapshot saved it.
  void restore(const DoneOrder& done) {
    if (slots_.size() == 0 || done.status == OrderStatus::Unspecified) return;
    DoneOrder& slot = slots_[done.id & mask_];
    if (slot.status == OrderStatus::Unspecified) ++size_;
    slot = done;
  }

  const DoneOrder* find(OrderId id) const {
    if (slots_.size() == 0) return nullptr;
    const DoneOrder& slot = slots_[id & mask_];
    return slot.id == id && slot.status != OrderStatus::Unspecified ? &slot : nullptr;
  }

  // Every remembered order, in slot order.
  template <typename F>
  void for_each(F&& visit) const {
    for (const DoneOrder& slot : slots_) {
      if (slot.status != OrderStatus::Unspecified) visit(slot);
    }
  }

 private:
  PageArray<DoneOrder> slots_;
  std::size_t mask_;
  std::size_t size_ = 0;  // slots in use
};

}  // namespace venue
