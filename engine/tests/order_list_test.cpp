#include "book/order_list.h"

#include <gtest/gtest.h>

#include <vector>

namespace venue {
namespace {

std::vector<OrderId> ids(const OrderList& list) {
  std::vector<OrderId> out;
  for (Order* order = list.front(); order != nullptr; order = order->next) out.push_back(order->id);
  return out;
}

TEST(OrderList, KeepsArrivalOrder) {
  Order a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  OrderList list;
  EXPECT_TRUE(list.empty());
  list.push_back(&a);
  list.push_back(&b);
  list.push_back(&c);
  EXPECT_EQ(ids(list), (std::vector<OrderId>{1, 2, 3}));
  EXPECT_EQ(list.front(), &a);
  EXPECT_EQ(list.back(), &c);
}

TEST(OrderList, ErasingFromTheMiddleKeepsTheOthersInOrder) {
  Order a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  OrderList list;
  list.push_back(&a);
  list.push_back(&b);
  list.push_back(&c);
  list.erase(&b);
  EXPECT_EQ(ids(list), (std::vector<OrderId>{1, 3}));
  EXPECT_EQ(b.prev, nullptr);
  EXPECT_EQ(b.next, nullptr);
}

TEST(OrderList, ErasingHeadAndTailUpdatesBothEnds) {
  Order a, b, c;
  a.id = 1;
  b.id = 2;
  c.id = 3;
  OrderList list;
  list.push_back(&a);
  list.push_back(&b);
  list.push_back(&c);
  list.erase(&a);
  EXPECT_EQ(list.front(), &b);
  list.erase(&c);
  EXPECT_EQ(list.back(), &b);
  list.erase(&b);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.back(), nullptr);
}

TEST(OrderList, ReappendedOrderGoesToTheBack) {
  Order a, b;
  a.id = 1;
  b.id = 2;
  OrderList list;
  list.push_back(&a);
  list.push_back(&b);
  list.erase(&a);
  list.push_back(&a);
  EXPECT_EQ(ids(list), (std::vector<OrderId>{2, 1}));
}

}  // namespace
}  // namespace venue
