#include "book/object_pool.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "book/order.h"

namespace venue {
namespace {

TEST(ObjectPool, ReleasedObjectIsReusedAndComesBackClean) {
  ObjectPool<Order> pool(2);
  Order* order = pool.acquire();
  order->id = 42;
  order->leaves_qty = 5;
  pool.release(order);
  Order* again = pool.acquire();
  EXPECT_EQ(again, order);
  EXPECT_EQ(again->id, 0u);
  EXPECT_EQ(again->leaves_qty, 0);
}

TEST(ObjectPool, GrowsPastItsCapacityWithoutMovingLiveObjects) {
  ObjectPool<Order> pool(4);
  std::vector<Order*> live;
  for (int i = 0; i < 100; ++i) {
    live.push_back(pool.acquire());
    live.back()->id = static_cast<OrderId>(i);
  }
  EXPECT_GE(pool.capacity(), 100u);
  EXPECT_EQ(pool.in_use(), 100u);
  EXPECT_EQ(std::set<Order*>(live.begin(), live.end()).size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(live[static_cast<std::size_t>(i)]->id, static_cast<OrderId>(i));
  for (Order* order : live) pool.release(order);
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(ObjectPool, ReusesReleasedObjectsBeforeFreshOnesAndCountsBoth) {
  ObjectPool<Order> pool(3);
  const std::size_t first = pool.capacity();  // 3, or a hugepage's worth
  std::vector<Order*> live;
  for (std::size_t i = 0; i < first; ++i) live.push_back(pool.acquire());
  Order* fresh = pool.acquire();  // the first of a second chunk, as big as the first
  EXPECT_EQ(pool.capacity(), 2 * first);
  EXPECT_EQ(pool.in_use(), first + 1);
  pool.release(live[1]);
  EXPECT_EQ(pool.in_use(), first);
  EXPECT_EQ(pool.acquire(), live[1]);  // released before fresh
  EXPECT_EQ(pool.acquire(), fresh + 1);  // then the chunk's next, in order
  EXPECT_EQ(pool.in_use(), first + 2);
  EXPECT_EQ(pool.capacity(), 2 * first);
}

}  // namespace
}  // namespace venue
