// The matching thread serializes batches from many gRPC threads: each batch's events
// are one contiguous run of sequences, and together they cover every sequence once.
#include "server/partition_worker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "recording_sink.h"

namespace venue::testing {
namespace {

TEST(PartitionWorker, BatchesFromManyThreadsAreAppliedWholeAndInOneSequence) {
  PartitionWorker worker(0, {Instrument{1, 1, 1000}}, 1 << 16);
  constexpr int kThreads = 4;
  constexpr int kBatches = 200;
  std::vector<std::vector<std::pair<std::uint64_t, std::uint64_t>>> runs(kThreads);  // [first, last] per batch
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Event> events;
      for (int b = 0; b < kBatches; ++b) {
        const OrderId id = static_cast<OrderId>(t * kBatches + b) * 2 + 1;
        const Price price = 100 + static_cast<Price>(b % 7);
        std::vector<Command> batch = {Command::make(CommandOrigin{}, limit_order(id, Side::Sell, price, 3)),
                                      Command::make(CommandOrigin{}, limit_order(id + 1, Side::Buy, price, 3))};
        events.clear();
        std::uint64_t next = 0;
        ASSERT_TRUE(worker.apply(batch, events, next));
        ASSERT_FALSE(events.empty());
        for (std::size_t i = 1; i < events.size(); ++i) ASSERT_EQ(events[i].sequence, events[0].sequence + i);
        ASSERT_GE(next, events.back().sequence + 1);
        runs[static_cast<std::size_t>(t)].emplace_back(events.front().sequence, events.back().sequence);
        HealthView health;
        ASSERT_TRUE(worker.health(health));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::vector<std::pair<std::uint64_t, std::uint64_t>> all;
  for (const auto& thread_runs : runs) all.insert(all.end(), thread_runs.begin(), thread_runs.end());
  std::sort(all.begin(), all.end());
  std::uint64_t expected = 1;
  for (const auto& [first, last] : all) {
    EXPECT_EQ(first, expected);
    expected = last + 1;
  }
  HealthView health;
  ASSERT_TRUE(worker.health(health));
  EXPECT_EQ(health.next_sequence, expected);
  EXPECT_EQ(health.commands_applied, 2u * kThreads * kBatches);

  BookView book;
  bool found = false;
  ASSERT_TRUE(worker.book(1, 0, book, found));
  EXPECT_TRUE(found);
  EXPECT_TRUE(book.bids.empty());  // every pair crossed in full
  EXPECT_TRUE(book.asks.empty());
  EXPECT_EQ(book.sequence, expected - 1);
}

TEST(PartitionWorker, ReadsBackWhatItAppliedForReplay) {
  PartitionWorker worker(3, {Instrument{1, 1, 1000}}, 4);
  std::vector<Event> events;
  std::uint64_t next = 0;
  ASSERT_TRUE(worker.apply({Command::make(CommandOrigin{}, limit_order(1, Side::Buy, 10, 1)),
                            Command::make(CommandOrigin{}, limit_order(2, Side::Buy, 11, 1)),
                            Command::make(CommandOrigin{}, limit_order(3, Side::Buy, 12, 1))},
                           events, next));
  EXPECT_EQ(next, 7u);
  std::vector<Event> replayed;
  bool evicted = false;
  std::uint64_t first = 0;
  ASSERT_TRUE(worker.read_events(3, 100, replayed, next, evicted, first));
  EXPECT_FALSE(evicted);
  ASSERT_EQ(replayed.size(), 4u);
  EXPECT_EQ(replayed.front().sequence, 3u);
  replayed.clear();
  ASSERT_TRUE(worker.read_events(1, 100, replayed, next, evicted, first));
  EXPECT_TRUE(evicted);  // the log holds four events
  EXPECT_EQ(first, 3u);
}

TEST(PartitionWorker, RefusesWorkOnceStopped) {
  PartitionWorker worker(0, {}, 16);
  worker.stop();
  EXPECT_FALSE(worker.running());
  HealthView health;
  EXPECT_FALSE(worker.health(health));
}

TEST(PartitionWorker, RejectsADuplicateInstrumentAtStart) {
  EXPECT_THROW(PartitionWorker(0, {Instrument{1, 1, 10}, Instrument{1, 1, 20}}, 16), std::invalid_argument);
}

}  // namespace
}  // namespace venue::testing
