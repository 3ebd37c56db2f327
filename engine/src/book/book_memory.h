// What every book of a partition shares: the pools orders and levels come from, the map
// of live order ids (unique per venue, so checked across instruments) and the done
// orders it remembers.
#pragma once

#include <cstddef>

#include "book/done_orders.h"
#include "book/object_pool.h"
#include "book/order.h"
#include "book/order_map.h"
#include "book/price_levels.h"

namespace venue {

struct BookMemory {
  explicit BookMemory(std::size_t order_capacity = 1 << 16, std::size_t level_capacity = 1 << 12,
                      HugePages hugepages = HugePages::Try, std::size_t done_capacity = 0)
      : orders(order_capacity, hugepages),
        levels(level_capacity, hugepages),
        live_orders(order_capacity),
        // Written once an order is done, read only when a request comes late: not worth
        // the hugepages a pod is given for the pools and the id map.
        done(done_capacity, HugePages::Off) {}

  ObjectPool<Order> orders;
  ObjectPool<PriceLevel> levels;
  OrderMap live_orders;
  DoneOrders done;
};

}  // namespace venue
