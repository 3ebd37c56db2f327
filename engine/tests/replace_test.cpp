// Replace (amend): quantity is the new total; less quantity at the same price keeps
// time priority, a new price or more quantity loses it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "book_fixture.h"

namespace venue::testing {
namespace {

using S = std::vector<std::string>;
using ReplaceTest = BookTest;

TEST_F(ReplaceTest, ReducingQuantityKeepsTimePriority) {
  submit(limit_order(1, Side::Buy, 100, 10));
  submit(limit_order(2, Side::Buy, 100, 10));
  auto out = replace(replace_order(1, 100, 4));
  EXPECT_EQ(labels(out), (S{"REPLACED 1", "level CHANGE"}));
  const ExecutionReport& r = out[0].report;
  EXPECT_EQ(r.quantity, 4);
  EXPECT_EQ(r.leaves_qty, 4);
  EXPECT_EQ(r.order_status, OrderStatus::New);
  EXPECT_EQ(out[1].level.quantity, 14);
  EXPECT_EQ(queue_at(Side::Buy, 100), (std::vector<OrderId>{1, 2}));
}

TEST_F(ReplaceTest, ReducingAPartiallyFilledOrderCountsItsFills) {
  submit(limit_order(1, Side::Buy, 100, 10));
  submit(limit_order(2, Side::Sell, 100, 3));
  auto out = replace(replace_order(1, 100, 5));
  const ExecutionReport& r = out[0].report;
  EXPECT_EQ(r.quantity, 5);
  EXPECT_EQ(r.cum_qty, 3);
  EXPECT_EQ(r.leaves_qty, 2);
  EXPECT_EQ(r.order_status, OrderStatus::PartiallyFilled);
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{100, 2, 1}}));
}

TEST_F(ReplaceTest, IncreasingQuantityLosesTimePriority) {
  submit(limit_order(1, Side::Buy, 100, 10));
  submit(limit_order(2, Side::Buy, 100, 10));
  auto out = replace(replace_order(1, 100, 12));
  EXPECT_EQ(labels(out), (S{"REPLACED 1", "level CHANGE"}));
  EXPECT_EQ(out[1].level.quantity, 22);
  EXPECT_EQ(queue_at(Side::Buy, 100), (std::vector<OrderId>{2, 1}));
}

TEST_F(ReplaceTest, IncreasingTheOnlyOrderOfALevelReportsOneChange) {
  submit(limit_order(1, Side::Buy, 100, 10));
  auto out = replace(replace_order(1, 100, 12));
  EXPECT_EQ(labels(out), (S{"REPLACED 1", "level CHANGE"}));
  EXPECT_EQ(out[1].level.quantity, 12);
}

TEST_F(ReplaceTest, PriceChangeMovesTheOrderToTheBackOfItsNewLevel) {
  submit(limit_order(1, Side::Buy, 100, 10));
  submit(limit_order(2, Side::Buy, 101, 10));
  auto out = replace(replace_order(1, 101, 10));
  EXPECT_EQ(labels(out), (S{"REPLACED 1", "level DELETE", "level CHANGE"}));
  EXPECT_EQ(out[0].report.price, 101);
  EXPECT_EQ(out[1].level.price, 100);
  EXPECT_EQ(out[2].level.price, 101);
  EXPECT_EQ(out[2].level.quantity, 20);
  EXPECT_EQ(queue_at(Side::Buy, 101), (std::vector<OrderId>{2, 1}));
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{101, 20, 2}}));
}

TEST_F(ReplaceTest, UnchangedReplaceIsAcknowledgedAndKeepsPriority) {
  submit(limit_order(1, Side::Buy, 100, 10));
  submit(limit_order(2, Side::Buy, 100, 10));
  EXPECT_EQ(labels(replace(replace_order(1, 100, 10))), (S{"REPLACED 1"}));
  EXPECT_EQ(queue_at(Side::Buy, 100), (std::vector<OrderId>{1, 2}));
}

TEST_F(ReplaceTest, QuantityAtOrBelowFilledIsRejectedAndTheOrderLivesOn) {
  submit(limit_order(1, Side::Buy, 100, 10));
  submit(limit_order(2, Side::Sell, 100, 4));
  auto out = replace(replace_order(1, 100, 4));
  EXPECT_EQ(labels(out), (S{"REPLACE_REJECTED 1"}));
  const ExecutionReport& r = out[0].report;
  EXPECT_EQ(r.reject_reason, RejectReason::ReplaceBelowFilled);
  EXPECT_EQ(r.order_status, OrderStatus::PartiallyFilled);  // the order's state, unchanged
  EXPECT_EQ(r.quantity, 10);
  EXPECT_EQ(r.leaves_qty, 6);
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{100, 6, 1}}));
}

TEST_F(ReplaceTest, ReplaceThatCrossesMatchesAndRestsTheRemainder) {
  submit(limit_order(1, Side::Sell, 105, 4));
  submit(limit_order(2, Side::Buy, 100, 10));
  auto out = replace(replace_order(2, 105, 10));
  EXPECT_EQ(labels(out), (S{"REPLACED 2", "trade", "TRADE 1", "TRADE 2", "level DELETE", "level DELETE",
                            "level ADD"}));
  EXPECT_EQ(out[1].trade.price, 105);
  EXPECT_EQ(out[1].trade.aggressor_side, Side::Buy);
  EXPECT_EQ(out[3].report.leaves_qty, 6);
  EXPECT_EQ(out[4].level.side, Side::Buy);  // left 100 first
  EXPECT_EQ(out[5].level.side, Side::Sell);
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{105, 6, 1}}));
}

TEST_F(ReplaceTest, ReplaceThatFillsCompletelyRetiresTheOrder) {
  submit(limit_order(1, Side::Sell, 105, 10));
  submit(limit_order(2, Side::Buy, 100, 10));
  auto out = replace(replace_order(2, 105, 10));
  EXPECT_EQ(out[3].report.order_status, OrderStatus::Filled);
  EXPECT_EQ(labels(cancel(cancel_order(2))), (S{"CANCEL_REJECTED 2"}));
  EXPECT_EQ(memory.orders.in_use(), 0u);  // this book remembers no done orders
}

TEST_F(ReplaceTest, PostOnlyReplaceThatWouldTakeIsRejected) {
  submit(limit_order(1, Side::Sell, 105, 10));
  NewOrder post = limit_order(2, Side::Buy, 100, 10);
  post.post_only = true;
  submit(post);
  auto out = replace(replace_order(2, 105, 10));
  EXPECT_EQ(labels(out), (S{"REPLACE_REJECTED 2"}));
  EXPECT_EQ(out[0].report.reject_reason, RejectReason::WouldTakeLiquidity);
  EXPECT_EQ(out[0].report.price, 100);
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{100, 10, 1}}));
}

TEST_F(ReplaceTest, InvalidReplaceIsRejectedWithItsReason) {
  submit(limit_order(1, Side::Buy, 100, 10));
  EXPECT_EQ(replace(replace_order(1, -1, 10))[0].report.reject_reason, RejectReason::InvalidPrice);
  EXPECT_EQ(replace(replace_order(1, 10'001, 10))[0].report.reject_reason, RejectReason::PriceOutOfBand);
  EXPECT_EQ(replace(replace_order(1, 100, -1))[0].report.reject_reason, RejectReason::InvalidQuantity);
  EXPECT_EQ(replace(replace_order(1, 10'001, 0))[0].report.reject_reason, RejectReason::PriceOutOfBand);
  EXPECT_EQ(replace(replace_order(1, 100, 10, /*account=*/99))[0].report.reject_reason, RejectReason::UnknownOrder);
  EXPECT_EQ(replace(replace_order(77, 100, 10))[0].report.reject_reason, RejectReason::UnknownOrder);
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{100, 10, 1}}));
}

TEST_F(ReplaceTest, ATermGivenAsZeroIsTheOrdersOwnAfterEveryReplaceBeforeIt) {
  // The gateway sends only what a replace changes: a later replace of the price must
  // not undo an earlier one of the quantity that the gateway had not yet heard of.
  submit(limit_order(1, Side::Buy, 100, 10));
  auto smaller = replace(replace_order(1, 0, 4));
  EXPECT_EQ(labels(smaller), (S{"REPLACED 1", "level CHANGE"}));
  EXPECT_EQ(smaller[0].report.price, 100);
  auto dearer = replace(replace_order(1, 101, 0));
  EXPECT_EQ(labels(dearer)[0], "REPLACED 1");
  EXPECT_EQ(dearer[0].report.price, 101);
  EXPECT_EQ(dearer[0].report.quantity, 4);
  EXPECT_EQ(dearer[0].report.leaves_qty, 4);
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{101, 4, 1}}));
  auto same = replace(replace_order(1, 0, 0));  // nothing changed: in place
  EXPECT_EQ(labels(same), (S{"REPLACED 1"}));
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{101, 4, 1}}));
}

}  // namespace
}  // namespace venue::testing
