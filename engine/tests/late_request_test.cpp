// Requests that lose a race: a cancel or replace that reaches the engine after its order
// is done (filled, canceled, expired, rejected), or names no order of the account. Each
// is answered with a CANCEL_REJECTED or REPLACE_REJECTED report stating the order's real
// state, and changes nothing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "book_fixture.h"

namespace venue::testing {
namespace {

using S = std::vector<std::string>;

class LateRequestTest : public BookTest {
 protected:
  static constexpr std::size_t kRemembered = 4;  // a power of two, as the memory rounds to

  LateRequestTest() : BookTest(kRemembered) {}

  // The one report a late request gets.
  ExecutionReport only_report(const std::vector<Event>& out) {
    EXPECT_EQ(out.size(), 1u) << "a refused request changes no level";
    return out.empty() ? ExecutionReport{} : out[0].report;
  }
};

TEST_F(LateRequestTest, CancelAfterTheFillIsTooLateAndStatesTheFill) {
  submit(limit_order(1, Side::Sell, 100, 5));
  submit(limit_order(2, Side::Buy, 100, 5));
  const ExecutionReport r = only_report(cancel(cancel_order(1)));
  EXPECT_EQ(r.exec_type, ExecType::CancelRejected);
  EXPECT_EQ(r.reject_reason, RejectReason::TooLateToCancel);
  EXPECT_EQ(r.order_status, OrderStatus::Filled);
  EXPECT_EQ(r.order_id, 1u);
  EXPECT_EQ(r.client_order_id.view(), "c");
  EXPECT_EQ(r.quantity, 5);
  EXPECT_EQ(r.cum_qty, 5);
  EXPECT_EQ(r.leaves_qty, 0);
  EXPECT_EQ(r.cum_notional, 500);
  EXPECT_EQ(r.price, 100);
}

TEST_F(LateRequestTest, SecondCancelIsTooLateAndStatesTheCancel) {
  submit(limit_order(1, Side::Buy, 100, 5));
  submit(limit_order(2, Side::Sell, 100, 2));
  EXPECT_EQ(labels(cancel(cancel_order(1))), (S{"CANCELED 1", "level DELETE"}));
  const ExecutionReport r = only_report(cancel(cancel_order(1)));
  EXPECT_EQ(r.exec_type, ExecType::CancelRejected);
  EXPECT_EQ(r.reject_reason, RejectReason::TooLateToCancel);
  EXPECT_EQ(r.order_status, OrderStatus::Canceled);
  EXPECT_EQ(r.cum_qty, 2);
  EXPECT_EQ(r.leaves_qty, 0);
}

TEST_F(LateRequestTest, ReplaceAfterTheCancelIsTooLateAndNothingRests) {
  submit(limit_order(1, Side::Buy, 100, 5));
  cancel(cancel_order(1));
  const ExecutionReport r = only_report(replace(replace_order(1, 101, 5)));
  EXPECT_EQ(r.exec_type, ExecType::ReplaceRejected);
  EXPECT_EQ(r.reject_reason, RejectReason::TooLateToCancel);
  EXPECT_EQ(r.order_status, OrderStatus::Canceled);
  EXPECT_EQ(r.price, 100);  // the order as it was, not as the replace asked
  EXPECT_EQ(book.order_count(), 0u);
}

TEST_F(LateRequestTest, CancelOfAnExpiredOrderIsTooLateExpired) {
  submit(limit_order(1, Side::Buy, 100, 5, TimeInForce::Day));
  book.expire_day();
  EXPECT_EQ(only_report(cancel(cancel_order(1))).order_status, OrderStatus::Expired);
}

TEST_F(LateRequestTest, CancelOfARejectedOrderIsTooLateRejected) {
  submit(limit_order(1, Side::Buy, 100, 5));
  NewOrder post = limit_order(2, Side::Sell, 100, 5);
  post.post_only = true;
  EXPECT_EQ(labels(submit(post)), (S{"REJECTED 2"}));
  const ExecutionReport r = only_report(cancel(cancel_order(2)));
  EXPECT_EQ(r.reject_reason, RejectReason::TooLateToCancel);
  EXPECT_EQ(r.order_status, OrderStatus::Rejected);
}

TEST_F(LateRequestTest, CancelOfAnIocRemainderIsTooLateCanceled) {
  submit(limit_order(1, Side::Sell, 100, 2));
  submit(limit_order(2, Side::Buy, 100, 5, TimeInForce::Ioc));
  const ExecutionReport r = only_report(cancel(cancel_order(2)));
  EXPECT_EQ(r.order_status, OrderStatus::Canceled);
  EXPECT_EQ(r.cum_qty, 2);
}

TEST_F(LateRequestTest, ReplaceToTheFilledQuantityIsRejectedAndTheOrderLivesOn) {
  submit(limit_order(1, Side::Buy, 100, 10));
  submit(limit_order(2, Side::Sell, 100, 4));
  const ExecutionReport r = only_report(replace(replace_order(1, 100, 4)));
  EXPECT_EQ(r.exec_type, ExecType::ReplaceRejected);
  EXPECT_EQ(r.reject_reason, RejectReason::ReplaceBelowFilled);
  EXPECT_EQ(r.order_status, OrderStatus::PartiallyFilled);
  EXPECT_EQ(r.leaves_qty, 6);
  EXPECT_EQ(labels(cancel(cancel_order(1))), (S{"CANCELED 1", "level DELETE"}));
}

TEST_F(LateRequestTest, UnknownIdOrAnotherAccountsOrderIsUnknownAndLeaksNothing) {
  submit(limit_order(1, Side::Sell, 100, 5, TimeInForce::Gtc, /*account=*/7));
  submit(limit_order(2, Side::Buy, 100, 5, TimeInForce::Gtc, /*account=*/8));  // 1 is done
  for (const CancelOrder& command : {cancel_order(1, /*account=*/8), cancel_order(99, /*account=*/8)}) {
    const ExecutionReport r = only_report(cancel(command));
    EXPECT_EQ(r.exec_type, ExecType::CancelRejected);
    EXPECT_EQ(r.reject_reason, RejectReason::UnknownOrder);
    EXPECT_EQ(r.order_status, OrderStatus::Rejected);
    EXPECT_EQ(r.account_id, 8u);
    EXPECT_EQ(r.quantity, 0);
    EXPECT_EQ(r.cum_qty, 0);
  }
  EXPECT_EQ(only_report(replace(replace_order(1, 100, 9, /*account=*/8))).reject_reason, RejectReason::UnknownOrder);
}

TEST_F(LateRequestTest, ADoneOrderIsForgottenWhenAnOrderOfItsSlotIsDone) {
  // Slots are order ids modulo the capacity: order 1 + kRemembered takes order 1's.
  for (OrderId id = 1; id <= kRemembered + 1; ++id) {
    submit(limit_order(id, Side::Buy, 100, 5));
    cancel(cancel_order(id));
  }
  EXPECT_EQ(memory.done.size(), kRemembered);
  EXPECT_EQ(memory.orders.in_use(), 0u);  // done orders hold no pooled order
  EXPECT_EQ(only_report(cancel(cancel_order(1))).reject_reason, RejectReason::UnknownOrder);
  for (OrderId id = 2; id <= kRemembered + 1; ++id) {
    EXPECT_EQ(only_report(cancel(cancel_order(id))).reject_reason, RejectReason::TooLateToCancel) << id;
  }
}

TEST_F(LateRequestTest, ALiveOrderIsFoundBeforeADoneOneOfTheSameId) {
  // Ids are the gateway's and never repeat; should one come again, the live order wins.
  submit(limit_order(1, Side::Buy, 100, 5));
  cancel(cancel_order(1));
  EXPECT_EQ(labels(submit(limit_order(1, Side::Buy, 101, 5))), (S{"NEW 1", "level ADD"}));
  EXPECT_EQ(labels(cancel(cancel_order(1))), (S{"CANCELED 1", "level DELETE"}));
  EXPECT_EQ(only_report(cancel(cancel_order(1))).price, 101);  // the later one is remembered
}

}  // namespace
}  // namespace venue::testing
