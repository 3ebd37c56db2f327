// What every book of a partition shares: the pools orders and levels come from and the
// map of live order ids (unique per venue, so checked across instruments).
#pragma once

#include <cstddef>

#include "book/object_pool.h"
#include "book/order.h"
#include "book/order_map.h"
#include "book/price_levels.h"

namespace venue {

struct BookMemory {
  explicit BookMemory(std::size_t order_capacity = 1 << 16, std::size_t level_capacity = 1 << 12,
                      HugePages hugepages = HugePages::Try)
      : orders(order_capacity, hugepages), levels(level_capacity, hugepages), live_orders(order_capacity) {}

  ObjectPool<Order> orders;
  ObjectPool<PriceLevel> levels;
  OrderMap live_orders;
};

}  // namespace venue
