// Session end (ExpireDay): every resting DAY order expires; GTC orders stay. EXPIRED
// reports in book priority (bids best first, then asks, FIFO), then the level updates.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "book_fixture.h"
#include "matching/exchange.h"

namespace venue::testing {
namespace {

using S = std::vector<std::string>;
using ExpireDayTest = BookTest;

TEST_F(ExpireDayTest, DayOrdersExpireAndGtcOrdersStay) {
  submit(limit_order(1, Side::Buy, 100, 5, TimeInForce::Day));
  submit(limit_order(2, Side::Buy, 100, 5, TimeInForce::Gtc));
  submit(limit_order(3, Side::Buy, 101, 5, TimeInForce::Day));
  submit(limit_order(4, Side::Sell, 105, 5, TimeInForce::Day));
  sink.take();
  book.expire_day();
  auto out = sink.take();
  EXPECT_EQ(labels(out), (S{"EXPIRED 3", "EXPIRED 1", "EXPIRED 4", "level DELETE", "level CHANGE", "level DELETE"}));
  const ExecutionReport& r = out[1].report;
  EXPECT_EQ(r.order_status, OrderStatus::Expired);
  EXPECT_EQ(r.leaves_qty, 0);
  EXPECT_EQ(r.quantity, 5);
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{100, 5, 1}}));
  EXPECT_TRUE(side(Side::Sell).empty());
}

TEST_F(ExpireDayTest, PartiallyFilledDayOrderExpiresWithItsFills) {
  submit(limit_order(1, Side::Buy, 100, 10, TimeInForce::Day));
  submit(limit_order(2, Side::Sell, 100, 4));
  sink.take();
  book.expire_day();
  auto out = sink.take();
  ASSERT_EQ(labels(out), (S{"EXPIRED 1", "level DELETE"}));
  EXPECT_EQ(out[0].report.cum_qty, 4);
  EXPECT_EQ(out[0].report.cum_notional, 400);
}

TEST_F(ExpireDayTest, ExpiredOrderIsNoLongerKnown) {
  submit(limit_order(1, Side::Buy, 100, 5, TimeInForce::Day));
  book.expire_day();
  EXPECT_EQ(cancel(cancel_order(1))[0].report.reject_reason, RejectReason::UnknownOrder);
}

TEST(ExpireDay, InstrumentZeroEndsTheSessionOfEveryInstrumentInIdOrder) {
  RecordingSink sink;
  Exchange exchange(sink);
  exchange.add_instrument(Instrument{2, 1, 1000});
  exchange.add_instrument(Instrument{1, 1, 1000});
  exchange.apply(Command::make(CommandOrigin{}, limit_order(1, Side::Buy, 10, 1, TimeInForce::Day, kOwnAccount, 2)), 1);
  exchange.apply(Command::make(CommandOrigin{}, limit_order(2, Side::Buy, 10, 1, TimeInForce::Day, kOwnAccount, 1)), 1);
  sink.take();
  exchange.apply(Command::make(CommandOrigin{}, ExpireDay{0}), 2);
  EXPECT_EQ(labels(sink.take()), (S{"EXPIRED 2", "level DELETE", "EXPIRED 1", "level DELETE"}));
  exchange.apply(Command::make(CommandOrigin{}, ExpireDay{9}), 3);
  const auto unknown = sink.take();
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(unknown[0].report.reject_reason, RejectReason::UnknownInstrument);
}

}  // namespace
}  // namespace venue::testing
