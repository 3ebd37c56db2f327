// Order id -> live order, for O(1) cancel and replace and the duplicate-id check.
// One map per partition: order ids are unique per venue, not per instrument.
#pragma once

#include "book/open_hash_map.h"
#include "book/order.h"

namespace venue {

using OrderMap = OpenHashMap<OrderId, Order*>;

}  // namespace venue
