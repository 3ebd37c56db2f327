// Self-trade prevention: an order never trades with a resting order of its own
// account. The venue's mode says who is canceled; the cancel comes where the fill
// would have been, with reject_reason SELF_TRADE. Fills with other accounts before the
// own order stand.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "book_fixture.h"

namespace venue::testing {
namespace {

using S = std::vector<std::string>;
using SelfTradeTest = BookTest;
constexpr AccountId kMe = 7;
constexpr AccountId kOther = 8;

TEST_F(SelfTradeTest, CancelNewestCancelsTheIncomingRemainderAndKeepsTheRestingOrder) {
  submit(limit_order(1, Side::Sell, 100, 5, TimeInForce::Gtc, kOther));
  submit(limit_order(2, Side::Sell, 100, 5, TimeInForce::Gtc, kMe));
  auto out = submit(limit_order(3, Side::Buy, 100, 8, TimeInForce::Gtc, kMe));
  EXPECT_EQ(labels(out), (S{"NEW 3", "trade", "TRADE 1", "TRADE 3", "CANCELED 3", "level CHANGE"}));
  const ExecutionReport& canceled = out[4].report;
  EXPECT_EQ(canceled.reject_reason, RejectReason::SelfTrade);
  EXPECT_EQ(canceled.order_status, OrderStatus::Canceled);
  EXPECT_EQ(canceled.cum_qty, 5);
  EXPECT_EQ(canceled.leaves_qty, 0);
  EXPECT_EQ(side(Side::Sell), (std::vector<LevelView>{{100, 5, 1}}));
  EXPECT_TRUE(side(Side::Buy).empty());
}

TEST_F(SelfTradeTest, CancelNewestAtTheFirstOrderLeavesTheLevelUnreported) {
  submit(limit_order(1, Side::Sell, 100, 5, TimeInForce::Gtc, kMe));
  auto out = submit(limit_order(2, Side::Buy, 101, 5, TimeInForce::Gtc, kMe));
  EXPECT_EQ(labels(out), (S{"NEW 2", "CANCELED 2"}));
  EXPECT_EQ(side(Side::Sell), (std::vector<LevelView>{{100, 5, 1}}));
}

TEST_F(SelfTradeTest, CancelOldestCancelsTheRestingOrderAndMatchesOn) {
  book.set_stp_mode(StpMode::CancelOldest);
  submit(limit_order(1, Side::Sell, 100, 5, TimeInForce::Gtc, kMe));
  submit(limit_order(2, Side::Sell, 100, 5, TimeInForce::Gtc, kOther));
  auto out = submit(limit_order(3, Side::Buy, 100, 8, TimeInForce::Gtc, kMe));
  EXPECT_EQ(labels(out), (S{"NEW 3", "CANCELED 1", "trade", "TRADE 2", "TRADE 3", "level DELETE", "level ADD"}));
  EXPECT_EQ(out[1].report.reject_reason, RejectReason::SelfTrade);
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{100, 3, 1}}));
  EXPECT_TRUE(side(Side::Sell).empty());
}

TEST_F(SelfTradeTest, CancelBothCancelsTheRestingOrderThenTheIncomingOne) {
  book.set_stp_mode(StpMode::CancelBoth);
  submit(limit_order(1, Side::Sell, 100, 5, TimeInForce::Gtc, kMe));
  submit(limit_order(2, Side::Sell, 100, 5, TimeInForce::Gtc, kOther));
  auto out = submit(limit_order(3, Side::Buy, 100, 8, TimeInForce::Gtc, kMe));
  EXPECT_EQ(labels(out), (S{"NEW 3", "CANCELED 1", "CANCELED 3", "level CHANGE"}));
  EXPECT_EQ(out[1].report.reject_reason, RejectReason::SelfTrade);
  EXPECT_EQ(out[2].report.reject_reason, RejectReason::SelfTrade);
  EXPECT_EQ(side(Side::Sell), (std::vector<LevelView>{{100, 5, 1}}));
  EXPECT_EQ(queue_at(Side::Sell, 100), (std::vector<OrderId>{2}));
}

TEST_F(SelfTradeTest, FokThatWouldReachItsOwnOrderUnderCancelNewestIsRejectedWhole) {
  submit(limit_order(1, Side::Sell, 100, 5, TimeInForce::Gtc, kOther));
  submit(limit_order(2, Side::Sell, 100, 5, TimeInForce::Gtc, kMe));
  submit(limit_order(3, Side::Sell, 101, 5, TimeInForce::Gtc, kOther));
  auto out = submit(limit_order(4, Side::Buy, 101, 8, TimeInForce::Fok, kMe));
  EXPECT_EQ(labels(out), (S{"REJECTED 4"}));
  EXPECT_EQ(out[0].report.reject_reason, RejectReason::FokNotFillable);
  EXPECT_EQ(side(Side::Sell), (std::vector<LevelView>{{100, 10, 2}, {101, 5, 1}}));
}

TEST_F(SelfTradeTest, FokUnderCancelOldestCountsOnlyOtherAccountsAndFillsWhole) {
  book.set_stp_mode(StpMode::CancelOldest);
  submit(limit_order(1, Side::Sell, 100, 5, TimeInForce::Gtc, kOther));
  submit(limit_order(2, Side::Sell, 100, 5, TimeInForce::Gtc, kMe));
  submit(limit_order(3, Side::Sell, 101, 5, TimeInForce::Gtc, kOther));
  EXPECT_EQ(labels(submit(limit_order(4, Side::Buy, 101, 11, TimeInForce::Fok, kMe))), (S{"REJECTED 4"}));
  auto out = submit(limit_order(5, Side::Buy, 101, 10, TimeInForce::Fok, kMe));
  EXPECT_EQ(labels(out), (S{"NEW 5", "trade", "TRADE 1", "TRADE 5", "CANCELED 2", "trade", "TRADE 3", "TRADE 5",
                            "level DELETE", "level DELETE"}));
  EXPECT_TRUE(side(Side::Sell).empty());
}

TEST_F(SelfTradeTest, MarketOrderStoppedByItsOwnOrderIsCanceledSelfTrade) {
  submit(limit_order(1, Side::Buy, 100, 5, TimeInForce::Gtc, kMe));
  auto out = submit(market_order(2, Side::Sell, 5, kMe));
  EXPECT_EQ(labels(out), (S{"NEW 2", "CANCELED 2"}));
  EXPECT_EQ(out[1].report.reject_reason, RejectReason::SelfTrade);
}

TEST_F(SelfTradeTest, ReplaceThatCrossesItsOwnOrderIsCanceledUnderCancelNewest) {
  submit(limit_order(1, Side::Sell, 105, 5, TimeInForce::Gtc, kMe));
  submit(limit_order(2, Side::Buy, 100, 5, TimeInForce::Gtc, kMe));
  auto out = replace(replace_order(2, 105, 5, kMe));
  EXPECT_EQ(labels(out), (S{"REPLACED 2", "CANCELED 2", "level DELETE"}));
  EXPECT_EQ(out[1].report.reject_reason, RejectReason::SelfTrade);
  EXPECT_TRUE(side(Side::Buy).empty());
  EXPECT_EQ(side(Side::Sell), (std::vector<LevelView>{{105, 5, 1}}));
}

TEST_F(SelfTradeTest, OtherAccountsTradeAsBefore) {
  submit(limit_order(1, Side::Sell, 100, 5, TimeInForce::Gtc, kOther));
  EXPECT_EQ(labels(submit(limit_order(2, Side::Buy, 100, 5, TimeInForce::Gtc, kMe))),
            (S{"NEW 2", "trade", "TRADE 1", "TRADE 2", "level DELETE"}));
}

}  // namespace
}  // namespace venue::testing
