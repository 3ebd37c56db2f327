// The property test: the engine and the reference model (reference_exchange.h) get the
// same random commands (every kind, many accounts, self-trade prevention in each mode)
// and must emit the same events, field by field, and hold the same books.
//
// Bounded for `make test`: VENUE_FUZZ_COMMANDS (default 300000, split over the cases)
// sets how many commands run; a long run is e.g.
//   VENUE_FUZZ_COMMANDS=20000000 ctest --test-dir engine/build -R MatchingProperty
// VENUE_FUZZ_SEED picks another seed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "command_generator.h"
#include "event_text.h"
#include "matching/exchange.h"
#include "recording_sink.h"
#include "reference_exchange.h"

namespace venue::testing {
namespace {

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : fallback;
}

struct Case {
  const char* name;
  StpMode stp;
  GeneratorShape shape;
  std::size_t done_orders = ExchangeOptions{}.done_order_capacity;  // small: forgetting runs too
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> cases() {
  GeneratorShape crowded;  // few accounts: self-trades all the time
  crowded.accounts = 3;
  GeneratorShape wide;  // many accounts, a wide band: deep books, long sweeps by market orders
  wide.accounts = 1000;
  wide.low = 1;
  wide.high = 400;
  wide.max_quantity = 500;
  wide.instruments = {1, 2, 3};
  GeneratorShape sessions;  // frequent session ends
  sessions.expire_per_mille = 30;
  return {{"newest", StpMode::CancelNewest, GeneratorShape{}},  {"oldest", StpMode::CancelOldest, GeneratorShape{}},
          {"both", StpMode::CancelBoth, GeneratorShape{}},      {"crowded_newest", StpMode::CancelNewest, crowded},
          {"crowded_oldest", StpMode::CancelOldest, crowded},   {"crowded_both", StpMode::CancelBoth, crowded},
          {"wide_newest", StpMode::CancelNewest, wide},         {"sessions_oldest", StpMode::CancelOldest, sessions},
          {"forgetful_newest", StpMode::CancelNewest, GeneratorShape{}, 16},
          {"forgetful_both", StpMode::CancelBoth, crowded, 0}};
}

class MatchingProperty : public ::testing::TestWithParam<Case> {};

void expect_same_books(const Exchange& engine, const ReferenceExchange& reference, const std::vector<InstrumentId>& ids,
                       std::uint64_t at) {
  for (InstrumentId id : ids) {
    for (Side side : {Side::Buy, Side::Sell}) {
      std::vector<std::tuple<Price, Quantity, std::size_t>> levels;
      engine.book(id)->for_each_level(side, 0, [&](const PriceLevel& level) {
        levels.emplace_back(level.price, level.quantity, level.order_count);
        std::vector<OrderId> queue;
        for (const Order* o = level.orders.front(); o != nullptr; o = o->next) queue.push_back(o->id);
        ASSERT_EQ(queue, reference.queue(id, side, level.price)) << "after command " << at;
      });
      ASSERT_EQ(levels, reference.levels(id, side)) << "instrument " << id << " after command " << at;
    }
  }
}

TEST_P(MatchingProperty, EngineEmitsWhatTheReferenceModelEmitsAndHoldsTheSameBooks) {
  const Case& c = GetParam();
  const std::uint64_t commands = env_or("VENUE_FUZZ_COMMANDS", 300'000) / cases().size();
  const std::uint64_t seed = env_or("VENUE_FUZZ_SEED", 1) * 1'000'003 + static_cast<std::uint64_t>(c.stp) * 7 +
                             c.shape.accounts;
  RecordingSink sink;
  ExchangeOptions options;
  options.order_capacity = 8;  // small pools: growth runs too
  options.level_capacity = 4;
  options.stp_mode = c.stp;
  options.done_order_capacity = c.done_orders;
  Exchange engine(sink, options);
  ReferenceExchange reference(c.stp, c.done_orders);
  for (InstrumentId id : c.shape.instruments) {
    const Instrument instrument{id, c.shape.low, c.shape.high};
    ASSERT_TRUE(engine.add_instrument(instrument));
    reference.add_instrument(instrument);
  }
  CommandGenerator generator(seed, c.shape);
  std::uint64_t events = 0;
  std::map<std::string, std::uint64_t> tally;  // what the run covered, printed at the end
  for (std::uint64_t i = 1; i <= commands; ++i) {
    const Command command = generator.next();
    const auto clock = static_cast<std::int64_t>(i);
    std::vector<Event> expected = reference.apply(command, clock);
    engine.apply(command, clock);
    std::vector<Event> got = sink.take();
    ASSERT_EQ(events_text(got), events_text(expected)) << "seed " << seed << ", command " << i;
    for (const Event& event : got) {
      if (event.type != EventType::Report) continue;
      const ExecutionReport& r = event.report;
      if (r.exec_type == ExecType::Trade) ++tally["fills"];
      if (r.reject_reason == RejectReason::SelfTrade) ++tally["self_trade_cancels"];
      if (r.exec_type == ExecType::Expired) ++tally["expired"];
      if (r.exec_type == ExecType::Replaced) ++tally["replaced"];
      if (r.exec_type == ExecType::Canceled && r.reject_reason == RejectReason::None) ++tally["canceled"];
      if (r.reject_reason == RejectReason::FokNotFillable) ++tally["fok_rejected"];
      if (r.reject_reason == RejectReason::WouldTakeLiquidity) ++tally["post_only_rejected"];
      if (r.reject_reason == RejectReason::ReplaceBelowFilled) ++tally["replace_below_filled"];
      if (r.reject_reason == RejectReason::TooLateToCancel) ++tally["too_late"];
      if (r.reject_reason == RejectReason::UnknownOrder) ++tally["unknown_order"];
      if (r.order_status == OrderStatus::New || r.order_status == OrderStatus::PartiallyFilled ||
          r.order_status == OrderStatus::Filled) {
        ASSERT_EQ(r.quantity, r.cum_qty + r.leaves_qty) << event_text(event);
      }
    }
    events += got.size();
    if (i % 1000 == 0) expect_same_books(engine, reference, c.shape.instruments, i);
  }
  expect_same_books(engine, reference, c.shape.instruments, commands);
  EXPECT_EQ(engine.next_sequence(), reference.next_sequence());
  EXPECT_EQ(engine.next_trade_id(), reference.next_trade_id());
  std::string summary = std::string(c.name) + ": " + std::to_string(commands) + " commands, " +
                        std::to_string(events) + " events";
  for (const auto& [what, count] : tally) summary += ", " + what + " " + std::to_string(count);
  std::cout << summary << ", resting at the end " << reference.live_orders() << std::endl;
  // Coverage of the generator, once the run is long enough to expect it of each case.
  for (const char* must : {"fills", "self_trade_cancels", "replaced", "canceled", "fok_rejected"}) {
    if (commands >= 20'000) {
      EXPECT_GT(tally[must], 0u) << must << " never happened: the generator does not cover it";
    }
  }
  if (commands >= 20'000) {
    EXPECT_GT(tally["unknown_order"], 0u);
    if (c.done_orders > 0) {
      EXPECT_GT(tally["too_late"], 0u) << "no request came after its order was done";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(StpModes, MatchingProperty, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace venue::testing
