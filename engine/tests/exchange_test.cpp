#include "matching/exchange.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "recording_sink.h"

namespace venue::testing {
namespace {

using S = std::vector<std::string>;

class ExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(exchange.add_instrument(Instrument{1, 1, 10'000}));
    ASSERT_TRUE(exchange.add_instrument(Instrument{2, 100, 200}));
  }

  template <typename Body>
  std::vector<Event> apply(const Body& body, std::uint64_t seq = 0, std::uint32_t shard = 0) {
    sink.take();
    exchange.apply(Command::make(CommandOrigin{shard, seq == 0 ? std::uint64_t{0} : std::uint64_t{1000}, seq}, body), 555);
    return sink.take();
  }

  RecordingSink sink;
  Exchange exchange{sink, ExchangeOptions{8, 4}};
};

TEST_F(ExchangeTest, SequencesStartAtOneWithoutGapsAcrossInstruments) {
  std::vector<Event> all;
  auto keep = [&](std::vector<Event> events) { all.insert(all.end(), events.begin(), events.end()); };
  keep(apply(limit_order(1, Side::Sell, 100, 5)));
  keep(apply(limit_order(2, Side::Sell, 150, 5, TimeInForce::Gtc, kOwnAccount, 2)));
  keep(apply(limit_order(3, Side::Buy, 100, 5)));
  keep(apply(limit_order(4, Side::Buy, 99, 5, TimeInForce::Gtc, kOwnAccount, 3)));
  keep(apply(cancel_order(2, kOwnAccount, 2)));
  ASSERT_EQ(all.size(), 12u);
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].sequence, i + 1);
  EXPECT_EQ(exchange.next_sequence(), 13u);
  EXPECT_EQ(exchange.commands_applied(), 5u);
}

TEST_F(ExchangeTest, TradeIdsStartAtOneAndCountAcrossInstruments) {
  apply(limit_order(1, Side::Sell, 100, 5));
  apply(limit_order(2, Side::Sell, 150, 5, TimeInForce::Gtc, kOwnAccount, 2));
  auto first = apply(limit_order(3, Side::Buy, 100, 5));
  auto second = apply(limit_order(4, Side::Buy, 150, 5, TimeInForce::Gtc, kOwnAccount, 2));
  EXPECT_EQ(first[1].trade.trade_id, 1u);
  EXPECT_EQ(second[1].trade.trade_id, 2u);
  EXPECT_EQ(second[1].trade.instrument_id, 2u);
}

TEST_F(ExchangeTest, OrderForAnUnregisteredInstrumentIsRejectedUnknownInstrument) {
  auto out = apply(limit_order(1, Side::Buy, 100, 5, TimeInForce::Gtc, kOwnAccount, /*instrument=*/9));
  EXPECT_EQ(labels(out), (S{"REJECTED 1"}));
  EXPECT_EQ(out[0].report.reject_reason, RejectReason::UnknownInstrument);
  EXPECT_EQ(out[0].report.order_status, OrderStatus::Rejected);
  EXPECT_EQ(apply(cancel_order(1, kOwnAccount, 9))[0].report.reject_reason, RejectReason::UnknownInstrument);
  EXPECT_EQ(apply(replace_order(1, 100, 5, kOwnAccount, 9))[0].report.reject_reason, RejectReason::UnknownInstrument);
}

TEST_F(ExchangeTest, PriceOutsideTheInstrumentsBandIsRejected) {
  auto out = apply(limit_order(1, Side::Buy, 99, 5, TimeInForce::Gtc, kOwnAccount, 2));
  EXPECT_EQ(out[0].report.reject_reason, RejectReason::PriceOutOfBand);
  EXPECT_EQ(apply(limit_order(2, Side::Buy, 201, 5, TimeInForce::Gtc, kOwnAccount, 2))[0].report.reject_reason,
            RejectReason::PriceOutOfBand);
  EXPECT_EQ(labels(apply(limit_order(3, Side::Buy, 200, 5, TimeInForce::Gtc, kOwnAccount, 2))), (S{"NEW 3", "level ADD"}));
}

TEST_F(ExchangeTest, OrderIdLiveOnAnotherInstrumentIsADuplicate) {
  apply(limit_order(1, Side::Buy, 100, 5));
  auto out = apply(limit_order(1, Side::Buy, 150, 5, TimeInForce::Gtc, kOwnAccount, 2));
  EXPECT_EQ(out[0].report.reject_reason, RejectReason::DuplicateOrderId);
}

TEST_F(ExchangeTest, CancelNamingAnotherInstrumentIsUnknownOrder) {
  apply(limit_order(1, Side::Buy, 100, 5));
  auto out = apply(cancel_order(1, kOwnAccount, /*instrument=*/2));
  EXPECT_EQ(labels(out), (S{"CANCEL_REJECTED 1"}));
  EXPECT_EQ(out[0].report.reject_reason, RejectReason::UnknownOrder);
  EXPECT_EQ(labels(apply(cancel_order(1, kOwnAccount, 1))), (S{"CANCELED 1", "level DELETE"}));
}

TEST_F(ExchangeTest, ReportsCarryTheCommandsOriginAndEveryEventItsClock) {
  sink.take();
  exchange.apply(Command::make(CommandOrigin{3, 1700000000123, 4}, limit_order(1, Side::Buy, 100, 5)), 987654321);
  auto out = sink.take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].report.shard, 3u);
  EXPECT_EQ(out[0].report.stream_ms, 1700000000123u);
  EXPECT_EQ(out[0].report.stream_seq, 4u);
  for (const Event& event : out) EXPECT_EQ(event.timestamp_ns, 987654321);
}

TEST_F(ExchangeTest, CommandWithoutABodyIsRejectedUnsupported) {
  Command empty;
  empty.origin = CommandOrigin{0, 5, 1};
  exchange.apply(empty, 1);
  auto out = sink.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].report.exec_type, ExecType::Rejected);
  EXPECT_EQ(out[0].report.reject_reason, RejectReason::Unsupported);
  EXPECT_EQ(out[0].report.stream_ms, 5u);
}

TEST_F(ExchangeTest, InstrumentIdsAreUniqueAndBandsValid) {
  EXPECT_FALSE(exchange.add_instrument(Instrument{1, 1, 5}));
  EXPECT_FALSE(exchange.add_instrument(Instrument{3, 0, 5}));
  EXPECT_FALSE(exchange.add_instrument(Instrument{3, 6, 5}));
  EXPECT_TRUE(exchange.add_instrument(Instrument{3, 5, 5}));
  EXPECT_EQ(exchange.instrument_count(), 3u);
}

TEST_F(ExchangeTest, BookOfAnInstrumentIsVisibleAndUnknownIsNull) {
  apply(limit_order(1, Side::Buy, 100, 5));
  ASSERT_NE(exchange.book(1), nullptr);
  EXPECT_EQ(exchange.book(1)->levels(Side::Buy).best()->quantity, 5);
  EXPECT_EQ(exchange.book(42), nullptr);
}

}  // namespace
}  // namespace venue::testing
