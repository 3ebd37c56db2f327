#include "book/order_book.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "book_fixture.h"

namespace venue::testing {
namespace {

using S = std::vector<std::string>;
using OrderBookTest = BookTest;

const ExecutionReport& report_of(const Event& event) {
  EXPECT_EQ(event.type, EventType::Report);
  return event.report;
}

TEST_F(OrderBookTest, RestingOrderIsAcknowledgedNewAndAddsItsLevel) {
  auto out = submit(limit_order(1, Side::Buy, 100, 10));
  EXPECT_EQ(labels(out), (S{"NEW 1", "level ADD"}));
  const ExecutionReport& r = report_of(out[0]);
  EXPECT_EQ(r.order_status, OrderStatus::New);
  EXPECT_EQ(r.quantity, 10);
  EXPECT_EQ(r.leaves_qty, 10);
  EXPECT_EQ(r.cum_qty, 0);
  EXPECT_EQ(r.price, 100);
  EXPECT_EQ(r.client_order_id.view(), "c");
  EXPECT_EQ(out[1].level.side, Side::Buy);
  EXPECT_EQ(out[1].level.price, 100);
  EXPECT_EQ(out[1].level.quantity, 10);
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{100, 10, 1}}));
}

TEST_F(OrderBookTest, CrossingOrderReportsNewThenPerFillTradeMakerTakerThenLevels) {
  submit(limit_order(1, Side::Sell, 100, 10, TimeInForce::Gtc, /*account=*/1));
  auto out = submit(limit_order(2, Side::Buy, 100, 10, TimeInForce::Gtc, /*account=*/2));
  EXPECT_EQ(labels(out), (S{"NEW 2", "trade", "TRADE 1", "TRADE 2", "level DELETE"}));

  const Trade& trade = out[1].trade;
  EXPECT_EQ(trade.trade_id, 1u);
  EXPECT_EQ(trade.price, 100);
  EXPECT_EQ(trade.quantity, 10);
  EXPECT_EQ(trade.buy_order_id, 2u);
  EXPECT_EQ(trade.sell_order_id, 1u);
  EXPECT_EQ(trade.aggressor_side, Side::Buy);

  const ExecutionReport& maker = report_of(out[2]);
  EXPECT_EQ(maker.order_status, OrderStatus::Filled);
  EXPECT_EQ(maker.last_qty, 10);
  EXPECT_EQ(maker.last_px, 100);
  EXPECT_EQ(maker.cum_qty, 10);
  EXPECT_EQ(maker.leaves_qty, 0);
  EXPECT_EQ(maker.cum_notional, 1000);
  EXPECT_EQ(maker.trade_id, 1u);
  EXPECT_EQ(maker.account_id, 1u);
  const ExecutionReport& taker = report_of(out[3]);
  EXPECT_EQ(taker.order_status, OrderStatus::Filled);
  EXPECT_EQ(taker.account_id, 2u);
  EXPECT_EQ(taker.trade_id, 1u);

  EXPECT_EQ(out[4].level.side, Side::Sell);
  EXPECT_EQ(out[4].level.quantity, 0);
  EXPECT_TRUE(side(Side::Sell).empty());
  EXPECT_TRUE(side(Side::Buy).empty());
  EXPECT_EQ(book.order_count(), 0u);
}

TEST_F(OrderBookTest, TradesAtTheRestingOrdersPrice) {
  submit(limit_order(1, Side::Sell, 95, 5));
  auto out = submit(limit_order(2, Side::Buy, 100, 5));
  EXPECT_EQ(out[1].trade.price, 95);
  EXPECT_EQ(report_of(out[3]).last_px, 95);
  EXPECT_EQ(report_of(out[3]).cum_notional, 475);
  EXPECT_EQ(report_of(out[3]).price, 100);  // the taker's own limit is unchanged
}

TEST_F(OrderBookTest, PartialFillLeavesRemainderAtItsPriceAndTime) {
  submit(limit_order(1, Side::Sell, 100, 10));
  submit(limit_order(2, Side::Sell, 100, 5));
  auto out = submit(limit_order(3, Side::Buy, 100, 4));
  EXPECT_EQ(labels(out), (S{"NEW 3", "trade", "TRADE 1", "TRADE 3", "level CHANGE"}));
  const ExecutionReport& maker = report_of(out[2]);
  EXPECT_EQ(maker.order_status, OrderStatus::PartiallyFilled);
  EXPECT_EQ(maker.cum_qty, 4);
  EXPECT_EQ(maker.leaves_qty, 6);
  EXPECT_EQ(maker.quantity, maker.cum_qty + maker.leaves_qty);
  EXPECT_EQ(out[4].level.quantity, 11);
  // Order 1 keeps its place ahead of order 2.
  EXPECT_EQ(queue_at(Side::Sell, 100), (std::vector<OrderId>{1, 2}));
  EXPECT_EQ(side(Side::Sell), (std::vector<LevelView>{{100, 11, 2}}));
}

TEST_F(OrderBookTest, TakerRemainderRestsAfterFillingWhatCrossed) {
  submit(limit_order(1, Side::Sell, 100, 3));
  auto out = submit(limit_order(2, Side::Buy, 101, 10));
  EXPECT_EQ(labels(out), (S{"NEW 2", "trade", "TRADE 1", "TRADE 2", "level DELETE", "level ADD"}));
  const ExecutionReport& taker = report_of(out[3]);
  EXPECT_EQ(taker.order_status, OrderStatus::PartiallyFilled);
  EXPECT_EQ(taker.leaves_qty, 7);
  EXPECT_EQ(out[5].level.side, Side::Buy);
  EXPECT_EQ(out[5].level.price, 101);
  EXPECT_EQ(out[5].level.quantity, 7);
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{101, 7, 1}}));
}

TEST_F(OrderBookTest, FillsWithinALevelInArrivalOrder) {
  submit(limit_order(1, Side::Buy, 100, 2));
  submit(limit_order(2, Side::Buy, 100, 2));
  submit(limit_order(3, Side::Buy, 100, 2));
  auto out = submit(limit_order(4, Side::Sell, 100, 5));
  EXPECT_EQ(labels(out), (S{"NEW 4", "trade", "TRADE 1", "TRADE 4", "trade", "TRADE 2", "TRADE 4", "trade",
                            "TRADE 3", "TRADE 4", "level CHANGE"}));
  EXPECT_EQ(out[7].trade.quantity, 1);
  EXPECT_EQ(queue_at(Side::Buy, 100), (std::vector<OrderId>{3}));
}

TEST_F(OrderBookTest, SweepsLevelsBestPriceFirst) {
  submit(limit_order(1, Side::Sell, 103, 1));
  submit(limit_order(2, Side::Sell, 101, 1));
  submit(limit_order(3, Side::Sell, 102, 1));
  auto out = submit(limit_order(4, Side::Buy, 102, 5, TimeInForce::Ioc));
  EXPECT_EQ(labels(out), (S{"NEW 4", "trade", "TRADE 2", "TRADE 4", "trade", "TRADE 3", "TRADE 4", "CANCELED 4",
                            "level DELETE", "level DELETE"}));
  EXPECT_EQ(out[1].trade.price, 101);
  EXPECT_EQ(out[4].trade.price, 102);
  EXPECT_EQ(out[8].level.price, 101);
  EXPECT_EQ(out[9].level.price, 102);
  EXPECT_EQ(report_of(out[6]).cum_notional, 101 + 102);
  EXPECT_EQ(side(Side::Sell), (std::vector<LevelView>{{103, 1, 1}}));
}

TEST_F(OrderBookTest, IocRemainderIsCanceledAndNeverRests) {
  submit(limit_order(1, Side::Sell, 100, 3));
  auto out = submit(limit_order(2, Side::Buy, 100, 5, TimeInForce::Ioc));
  EXPECT_EQ(labels(out), (S{"NEW 2", "trade", "TRADE 1", "TRADE 2", "CANCELED 2", "level DELETE"}));
  const ExecutionReport& canceled = report_of(out[4]);
  EXPECT_EQ(canceled.order_status, OrderStatus::Canceled);
  EXPECT_EQ(canceled.reject_reason, RejectReason::None);
  EXPECT_EQ(canceled.cum_qty, 3);
  EXPECT_EQ(canceled.leaves_qty, 0);
  EXPECT_EQ(canceled.quantity, 5);
  EXPECT_TRUE(side(Side::Buy).empty());
}

TEST_F(OrderBookTest, IocWithNothingToTakeIsCanceledWithoutTrades) {
  submit(limit_order(1, Side::Sell, 101, 3));
  auto out = submit(limit_order(2, Side::Buy, 100, 5, TimeInForce::Ioc));
  EXPECT_EQ(labels(out), (S{"NEW 2", "CANCELED 2"}));
  EXPECT_EQ(report_of(out[1]).leaves_qty, 0);
}

TEST_F(OrderBookTest, FokThatCannotFillCompletelyIsRejectedAndTouchesNothing) {
  submit(limit_order(1, Side::Sell, 100, 3));
  submit(limit_order(2, Side::Sell, 101, 3));
  submit(limit_order(3, Side::Sell, 102, 10));
  auto out = submit(limit_order(4, Side::Buy, 101, 7, TimeInForce::Fok));
  EXPECT_EQ(labels(out), (S{"REJECTED 4"}));
  const ExecutionReport& r = report_of(out[0]);
  EXPECT_EQ(r.reject_reason, RejectReason::FokNotFillable);
  EXPECT_EQ(r.order_status, OrderStatus::Rejected);
  EXPECT_EQ(r.leaves_qty, 0);
  EXPECT_EQ(side(Side::Sell), (std::vector<LevelView>{{100, 3, 1}, {101, 3, 1}, {102, 10, 1}}));
  EXPECT_EQ(events.next_trade_id(), 1u);
}

TEST_F(OrderBookTest, FokThatCanFillTradesCompletelyAcrossLevels) {
  submit(limit_order(1, Side::Sell, 100, 3));
  submit(limit_order(2, Side::Sell, 101, 3));
  auto out = submit(limit_order(3, Side::Buy, 101, 6, TimeInForce::Fok));
  EXPECT_EQ(labels(out), (S{"NEW 3", "trade", "TRADE 1", "TRADE 3", "trade", "TRADE 2", "TRADE 3", "level DELETE",
                            "level DELETE"}));
  EXPECT_EQ(report_of(out[6]).order_status, OrderStatus::Filled);
}

TEST_F(OrderBookTest, MarketOrderWithNoLiquidityIsCanceledNoLiquidity) {
  auto out = submit(market_order(1, Side::Buy, 5));
  EXPECT_EQ(labels(out), (S{"NEW 1", "CANCELED 1"}));
  const ExecutionReport& r = report_of(out[1]);
  EXPECT_EQ(r.reject_reason, RejectReason::NoLiquidity);
  EXPECT_EQ(r.order_status, OrderStatus::Canceled);
  EXPECT_EQ(r.price, 0);
  EXPECT_EQ(r.leaves_qty, 0);
}

TEST_F(OrderBookTest, MarketOrderTakesAtAnyPriceAndCancelsTheRest) {
  submit(limit_order(1, Side::Buy, 10, 2));
  submit(limit_order(2, Side::Buy, 9'000, 2));
  auto out = submit(market_order(3, Side::Sell, 5));
  EXPECT_EQ(labels(out), (S{"NEW 3", "trade", "TRADE 2", "TRADE 3", "trade", "TRADE 1", "TRADE 3", "CANCELED 3",
                            "level DELETE", "level DELETE"}));
  EXPECT_EQ(out[1].trade.price, 9'000);
  EXPECT_EQ(report_of(out[7]).cum_qty, 4);
  EXPECT_EQ(report_of(out[7]).reject_reason, RejectReason::NoLiquidity);
}

TEST_F(OrderBookTest, MarketFokTakesOnlyWhenEverythingFills) {
  submit(limit_order(1, Side::Sell, 100, 2));
  NewOrder fok = market_order(2, Side::Buy, 3);
  fok.time_in_force = TimeInForce::Fok;
  EXPECT_EQ(labels(submit(fok)), (S{"REJECTED 2"}));
  fok.quantity = 2;
  EXPECT_EQ(labels(submit(fok)), (S{"NEW 2", "trade", "TRADE 1", "TRADE 2", "level DELETE"}));
}

TEST_F(OrderBookTest, PostOnlyThatWouldTakeIsRejectedNeverRepriced) {
  submit(limit_order(1, Side::Sell, 100, 3));
  NewOrder post = limit_order(2, Side::Buy, 100, 3);
  post.post_only = true;
  auto out = submit(post);
  EXPECT_EQ(labels(out), (S{"REJECTED 2"}));
  EXPECT_EQ(report_of(out[0]).reject_reason, RejectReason::WouldTakeLiquidity);
  EXPECT_TRUE(report_of(out[0]).post_only);
  EXPECT_TRUE(side(Side::Buy).empty());
  EXPECT_EQ(side(Side::Sell), (std::vector<LevelView>{{100, 3, 1}}));
}

TEST_F(OrderBookTest, PostOnlyThatDoesNotCrossRests) {
  submit(limit_order(1, Side::Sell, 100, 3));
  NewOrder post = limit_order(2, Side::Buy, 99, 3);
  post.post_only = true;
  EXPECT_EQ(labels(submit(post)), (S{"NEW 2", "level ADD"}));
}

TEST_F(OrderBookTest, DayOrderRestsLikeGtc) {
  EXPECT_EQ(labels(submit(limit_order(1, Side::Buy, 100, 3, TimeInForce::Day))), (S{"NEW 1", "level ADD"}));
}

struct InvalidOrder {
  std::string name;
  NewOrder order;
  RejectReason reason;
};

TEST_F(OrderBookTest, InvalidOrdersAreRejectedWithTheirReasonAndChangeNothing) {
  auto with = [](auto change) {
    NewOrder order = limit_order(9, Side::Buy, 100, 5);
    change(order);
    return order;
  };
  const std::string long_id(64, 'x');
  const std::vector<InvalidOrder> cases = {
      {"zero quantity", with([](NewOrder& o) { o.quantity = 0; }), RejectReason::InvalidQuantity},
      {"negative quantity", with([](NewOrder& o) { o.quantity = -1; }), RejectReason::InvalidQuantity},
      {"huge quantity", with([](NewOrder& o) { o.quantity = kMaxOrderQuantity + 1; }), RejectReason::InvalidQuantity},
      {"zero price", with([](NewOrder& o) { o.price = 0; }), RejectReason::InvalidPrice},
      {"negative price", with([](NewOrder& o) { o.price = -5; }), RejectReason::InvalidPrice},
      {"above band", with([](NewOrder& o) { o.price = 10'001; }), RejectReason::PriceOutOfBand},
      {"side unspecified", with([](NewOrder& o) { o.side = Side::Unspecified; }), RejectReason::Unsupported},
      {"side unknown", with([](NewOrder& o) { o.side = static_cast<Side>(9); }), RejectReason::Unsupported},
      {"type unspecified", with([](NewOrder& o) { o.type = OrderType::Unspecified; }), RejectReason::Unsupported},
      {"tif unspecified",
       with([](NewOrder& o) { o.time_in_force = TimeInForce::Unspecified; }), RejectReason::Unsupported},
      {"market with a price", with([](NewOrder& o) { o.type = OrderType::Market; }), RejectReason::InvalidPrice},
      {"post-only IOC",
       with([](NewOrder& o) {
         o.post_only = true;
         o.time_in_force = TimeInForce::Ioc;
       }),
       RejectReason::Unsupported},
      {"client order id too long", with([&](NewOrder& o) { o.client_order_id = long_id; }),
       RejectReason::Unsupported},
  };
  for (const InvalidOrder& c : cases) {
    auto out = submit(c.order);
    ASSERT_EQ(labels(out), (S{"REJECTED 9"})) << c.name;
    EXPECT_EQ(report_of(out[0]).reject_reason, c.reason) << c.name;
    EXPECT_EQ(report_of(out[0]).order_status, OrderStatus::Rejected) << c.name;
    EXPECT_EQ(report_of(out[0]).leaves_qty, 0) << c.name;
  }
  EXPECT_TRUE(side(Side::Buy).empty());
  EXPECT_EQ(memory.orders.in_use(), 0u);
}

TEST_F(OrderBookTest, LiveOrderIdIsNotAcceptedTwice) {
  submit(limit_order(1, Side::Buy, 100, 5));
  auto out = submit(limit_order(1, Side::Sell, 200, 5));
  EXPECT_EQ(labels(out), (S{"REJECTED 1"}));
  EXPECT_EQ(report_of(out[0]).reject_reason, RejectReason::DuplicateOrderId);
  EXPECT_TRUE(side(Side::Sell).empty());
}

TEST_F(OrderBookTest, CancelRemovesTheOrderAndDeletesItsEmptyLevel) {
  submit(limit_order(1, Side::Buy, 100, 5));
  auto out = cancel(cancel_order(1));
  EXPECT_EQ(labels(out), (S{"CANCELED 1", "level DELETE"}));
  const ExecutionReport& r = report_of(out[0]);
  EXPECT_EQ(r.order_status, OrderStatus::Canceled);
  EXPECT_EQ(r.leaves_qty, 0);
  EXPECT_EQ(r.quantity, 5);
  EXPECT_TRUE(side(Side::Buy).empty());
  EXPECT_EQ(memory.orders.in_use(), 0u);
  EXPECT_EQ(memory.live_orders.size(), 0u);
}

TEST_F(OrderBookTest, CancelFromTheMiddleOfALevelKeepsTheOthersInOrder) {
  submit(limit_order(1, Side::Buy, 100, 1));
  submit(limit_order(2, Side::Buy, 100, 2));
  submit(limit_order(3, Side::Buy, 100, 3));
  auto out = cancel(cancel_order(2));
  EXPECT_EQ(labels(out), (S{"CANCELED 2", "level CHANGE"}));
  EXPECT_EQ(out[1].level.quantity, 4);
  EXPECT_EQ(queue_at(Side::Buy, 100), (std::vector<OrderId>{1, 3}));
}

TEST_F(OrderBookTest, CancelOfPartiallyFilledOrderReportsItsFills) {
  submit(limit_order(1, Side::Buy, 100, 5));
  submit(limit_order(2, Side::Sell, 100, 2));
  auto out = cancel(cancel_order(1));
  const ExecutionReport& r = report_of(out[0]);
  EXPECT_EQ(r.cum_qty, 2);
  EXPECT_EQ(r.leaves_qty, 0);
  EXPECT_EQ(r.cum_notional, 200);
}

TEST_F(OrderBookTest, CancelOfAnotherAccountsOrderIsUnknownOrderAndLeavesIt) {
  submit(limit_order(1, Side::Buy, 100, 5, TimeInForce::Gtc, /*account=*/7));
  auto out = cancel(cancel_order(1, /*account=*/8));
  EXPECT_EQ(labels(out), (S{"CANCEL_REJECTED 1"}));
  const ExecutionReport& r = report_of(out[0]);
  EXPECT_EQ(r.reject_reason, RejectReason::UnknownOrder);
  EXPECT_EQ(r.order_status, OrderStatus::Rejected);  // FIX's OrdStatus for an unknown order
  EXPECT_EQ(r.account_id, 8u);
  EXPECT_EQ(r.quantity, 0);  // nothing of account 7's order leaks
  EXPECT_EQ(side(Side::Buy), (std::vector<LevelView>{{100, 5, 1}}));
}

TEST_F(OrderBookTest, CancelOfAFilledOrderNotRememberedIsUnknownOrder) {
  // This book's memory keeps no done orders (see late_request_test.cpp for those that do).
  submit(limit_order(1, Side::Buy, 100, 5));
  submit(limit_order(2, Side::Sell, 100, 5));
  auto out = cancel(cancel_order(1));
  EXPECT_EQ(labels(out), (S{"CANCEL_REJECTED 1"}));
  EXPECT_EQ(report_of(out[0]).reject_reason, RejectReason::UnknownOrder);
}

TEST_F(OrderBookTest, ReportsAndLevelsObeyTheInvariantsUnderRandomFlow) {
  // Random new/cancel/replace flow; after every command the book is uncrossed, every
  // level's total is the sum of its orders, and every report keeps quantity ==
  // cum_qty + leaves_qty while live and leaves_qty == 0 once done.
  std::mt19937_64 random(2024);
  OrderId next_id = 1;
  std::vector<OrderId> issued;
  for (int step = 0; step < 20000; ++step) {
    const auto pick = random() % 10;
    sink.take();
    if (pick < 6 || issued.empty()) {
      const Side s = random() % 2 ? Side::Buy : Side::Sell;
      NewOrder order = limit_order(next_id, s, 95 + static_cast<Price>(random() % 11), 1 + random() % 20,
                                   static_cast<TimeInForce>(1 + random() % 4));
      if (random() % 10 == 0) {
        order.type = OrderType::Market;
        order.price = 0;
      }
      order.post_only = order.type == OrderType::Limit && random() % 8 == 0 &&
                        (order.time_in_force == TimeInForce::Gtc || order.time_in_force == TimeInForce::Day);
      book.new_order(order);
      issued.push_back(next_id++);
    } else if (pick < 8) {
      book.cancel(cancel_order(issued[random() % issued.size()]));
    } else {
      book.replace(replace_order(issued[random() % issued.size()], 95 + static_cast<Price>(random() % 11),
                                 1 + random() % 25));
    }
    for (const Event& event : sink.events) {
      if (event.type != EventType::Report) continue;
      const ExecutionReport& r = event.report;
      const bool done = r.order_status == OrderStatus::Filled || r.order_status == OrderStatus::Canceled ||
                        r.order_status == OrderStatus::Rejected || r.order_status == OrderStatus::Expired;
      if (done) {
        ASSERT_EQ(r.leaves_qty, 0) << step;
      } else if (r.order_status != OrderStatus::Unspecified) {
        ASSERT_EQ(r.quantity, r.cum_qty + r.leaves_qty) << step;
        ASSERT_GT(r.leaves_qty, 0) << step;
      }
      if (r.exec_type == ExecType::Trade) {
        ASSERT_GT(r.last_qty, 0);
      }
    }
    const OrderBook& view = book;
    const PriceLevel* bid = view.levels(Side::Buy).best();
    const PriceLevel* ask = view.levels(Side::Sell).best();
    if (bid != nullptr && ask != nullptr) {
      ASSERT_LT(bid->price, ask->price) << step;
    }
    std::size_t resting = 0;
    for (Side s : {Side::Buy, Side::Sell}) {
      book.for_each_level(s, 0, [&](const PriceLevel& level) {
        Quantity total = 0;
        std::uint32_t count = 0;
        for (const Order* o = level.orders.front(); o != nullptr; o = o->next) {
          total += o->leaves_qty;
          ++count;
          ASSERT_EQ(o->price, level.price);
          ASSERT_EQ(o->quantity, o->cum_qty + o->leaves_qty);
        }
        ASSERT_EQ(total, level.quantity);
        ASSERT_EQ(count, level.order_count);
        ASSERT_GT(count, 0u);
        resting += count;
      });
    }
    ASSERT_EQ(resting, book.order_count());
    ASSERT_EQ(resting, memory.live_orders.size());
    ASSERT_EQ(resting, memory.orders.in_use());
  }
}

}  // namespace
}  // namespace venue::testing
