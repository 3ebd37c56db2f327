// The matching thread serializes batches from many gRPC threads: each batch's events
// are one contiguous run of sequences, and together they cover every sequence once.
#include "server/partition_worker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <iterator>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "command_generator.h"
#include "event_text.h"
#include "journal/snapshot.h"
#include "recording_sink.h"

namespace venue::testing {
namespace {

TEST(PartitionWorker, AnOrderIsReadLiveDoneOrUnknownWithItsState) {
  PartitionWorker worker(0, {Instrument{1, 1, 1000}}, 1 << 10);
  std::vector<Event> events;
  std::uint64_t next = 0;
  ASSERT_TRUE(worker.apply({Command::make(CommandOrigin{}, limit_order(1, Side::Sell, 100, 5)),
                            Command::make(CommandOrigin{}, limit_order(2, Side::Buy, 100, 3))},
                           events, next));
  OrderView live;
  ASSERT_TRUE(worker.order(1, live));
  EXPECT_EQ(live.known, OrderKnown::Live);
  EXPECT_EQ(live.state.order_status, OrderStatus::PartiallyFilled);
  EXPECT_EQ(live.state.leaves_qty, 2);
  EXPECT_EQ(live.sequence, next - 1);
  OrderView done;
  ASSERT_TRUE(worker.order(2, done));
  EXPECT_EQ(done.known, OrderKnown::Done);
  EXPECT_EQ(done.state.order_status, OrderStatus::Filled);
  EXPECT_EQ(done.state.cum_qty, 3);
  EXPECT_EQ(done.state.leaves_qty, 0);
  EXPECT_EQ(done.state.cum_notional, 300);
  OrderView unknown;
  ASSERT_TRUE(worker.order(3, unknown));
  EXPECT_EQ(unknown.known, OrderKnown::Unknown);
}

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

// A worker with a journal in a fresh directory, and a small event log so resends and
// replays have to reach past memory.
struct StoredWorker {
  explicit StoredWorker(const std::string& dir, std::size_t log = 1 << 12,
                        std::chrono::microseconds commit_part = WorkerOptions{}.commit_part) {
    WorkerOptions options;
    options.instruments = {Instrument{1, 1, 1000}, Instrument{2, 1, 1000}};
    options.event_log_capacity = log;
    options.commit_part = commit_part;
    options.store = StoreOptions{};
    options.store->dir = dir;
    options.store->fsync = FsyncPolicy::None;
    options.store->snapshot_every = 300;
    worker = std::make_unique<PartitionWorker>(options);
  }
  std::vector<Event> apply(const std::vector<Command>& batch) {
    std::vector<Event> out;
    std::uint64_t next = 0;
    EXPECT_TRUE(worker->apply(batch, out, next));
    return out;
  }
  std::unique_ptr<PartitionWorker> worker;
};

std::string fresh_dir(const char* name) {
  const auto path = std::filesystem::temp_directory_path() / (std::string("venue-worker-") + name + "-" +
                                                              std::to_string(::getpid()));
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path.string();
}

TEST(PartitionWorker, ResentBatchIsNotAppliedAgainAndIsAnsweredWithItsOriginalEvents) {
  PartitionWorker worker(0, {Instrument{1, 1, 1000}}, 1 << 10);
  const std::vector<Command> batch = {
      Command::make(CommandOrigin{1, 5, 1}, limit_order(1, Side::Sell, 10, 4)),
      Command::make(CommandOrigin{1, 5, 2}, limit_order(2, Side::Buy, 10, 3))};
  std::vector<Event> first;
  std::vector<Event> again;
  std::uint64_t next = 0;
  ASSERT_TRUE(worker.apply(batch, first, next));
  ASSERT_TRUE(worker.apply(batch, again, next));
  EXPECT_EQ(events_text(again), events_text(first));
  HealthView health;
  ASSERT_TRUE(worker.health(health));
  EXPECT_EQ(health.commands_applied, 2u);
  EXPECT_EQ(health.duplicates, 2u);
  EXPECT_EQ(next, first.back().sequence + 1);  // nothing new was sequenced
}

TEST(PartitionWorker, ResentTailOfABatchComesFirstThenTheNewCommands) {
  PartitionWorker worker(0, {Instrument{1, 1, 1000}}, 1 << 10);
  std::vector<Event> first;
  std::vector<Event> mixed;
  std::uint64_t next = 0;
  ASSERT_TRUE(worker.apply({Command::make(CommandOrigin{1, 5, 1}, limit_order(1, Side::Sell, 10, 4))}, first, next));
  ASSERT_TRUE(worker.apply({Command::make(CommandOrigin{1, 5, 1}, limit_order(1, Side::Sell, 10, 4)),
                            Command::make(CommandOrigin{1, 5, 2}, limit_order(2, Side::Buy, 9, 3))},
                           mixed, next));
  EXPECT_EQ(labels(mixed), (std::vector<std::string>{"NEW 1", "level ADD", "NEW 2", "level ADD"}));
  EXPECT_EQ(mixed[0].sequence, 1u);
  EXPECT_EQ(mixed[2].sequence, 3u);
}

TEST(PartitionWorker, ResentAfterARestartIsAnsweredFromTheJournal) {
  const std::string dir = fresh_dir("resend-restart");
  CommandGenerator generator(21);
  std::vector<std::vector<Command>> batches;
  for (int i = 0; i < 40; ++i) batches.push_back(generator.batch(25));
  std::vector<std::vector<Event>> answers;
  {
    StoredWorker before(dir);
    for (const auto& batch : batches) answers.push_back(before.apply(batch));
  }
  StoredWorker after(dir, 64);  // memory holds far less than was applied
  for (std::size_t i : {std::size_t{0}, std::size_t{17}, std::size_t{39}}) {
    EXPECT_EQ(events_text(after.apply(batches[i])), events_text(answers[i])) << "batch " << i;
  }
  after.worker.reset();  // its snapshot child done before the dir goes
  std::filesystem::remove_all(dir);
}

TEST(PartitionWorker, HistoryServesEventsOlderThanMemoryFromTheJournal) {
  const std::string dir = fresh_dir("history");
  CommandGenerator generator(22);
  StoredWorker stored(dir, 32);
  std::vector<Event> all;
  for (int i = 0; i < 30; ++i) {
    std::vector<Event> out = stored.apply(generator.batch(20));
    all.insert(all.end(), out.begin(), out.end());
  }
  std::vector<Event> rebuilt;
  ASSERT_TRUE(stored.worker->history(1, all.size() + 1, [&](const Event& event) {
    rebuilt.push_back(event);
    return true;
  }));
  EXPECT_EQ(events_text(rebuilt), events_text(all));
  stored.worker.reset();  // its snapshot child done before the dir goes
  std::filesystem::remove_all(dir);
}

TEST(PartitionWorker, APruneThatHangsHoldsNeitherTheMatchingThreadNorTheCallsThatAskedForIt) {
  // A snapshot that cannot be read yet (a FIFO with a snapshot's name, opened by a writer
  // that sends nothing) holds the prune that reads its header. Meanwhile batches go on
  // being matched and journaled, the writer's calls are answered within their bound
  // (saying the prune is not done) and merged into one prune after it, and the prune
  // finishes once the file gives way.
  const std::string dir = fresh_dir("prune");
  WorkerOptions options;
  options.instruments = {Instrument{1, 1, 1000}, Instrument{2, 1, 1000}};
  options.store = StoreOptions{};
  options.store->dir = dir;
  options.store->fsync = FsyncPolicy::None;
  options.store->snapshot_every = 300;
  options.store->snapshot_in_background = false;  // each written by the time its batch is answered
  PartitionWorker worker(options);
  CommandGenerator generator(23);
  std::uint64_t next = 0;
  for (int i = 0; i < 20; ++i) {
    std::vector<Event> out;
    ASSERT_TRUE(worker.apply(generator.batch(50), out, next));  // three snapshots
  }
  const auto files = [&dir] {
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(dir),
                                                  std::filesystem::directory_iterator()));
  };
  const std::string stuck = dir + "/" + snapshot_file_name(1);
  ASSERT_EQ(::mkfifo(stuck.c_str(), 0600), 0);
  const std::size_t before = files();
  // Each call on a thread of its own, so that one held by the prune fails the test
  // rather than hanging it: answered within its bound (with room for a slow host), never
  // as long as the prune takes.
  std::vector<std::future<void>> calls;
  const auto answered_in_time = [&worker, &calls](const char* which) {
    calls.push_back(std::async(std::launch::async, [&worker, which] {
      std::optional<std::size_t> deleted = 99;
      EXPECT_TRUE(worker.persisted(UINT64_MAX, deleted));
      EXPECT_EQ(deleted, std::nullopt) << which << " was answered as if the prune had finished";
    }));
    EXPECT_EQ(calls.back().wait_for(PartitionWorker::kPruneAnsweredWithin * 10), std::future_status::ready)
        << which << " waited for the prune";
  };
  answered_in_time("the call that started the prune");
  // Open for writing once the prune has it open for reading: from then on its read waits.
  int writer = -1;
  for (int tries = 0; writer < 0 && tries < 10'000; ++tries) {
    writer = ::open(stuck.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer < 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (writer < 0) {
    ADD_FAILURE() << "the prune never opened " << stuck;
    writer = ::open(stuck.c_str(), O_RDWR | O_NONBLOCK);  // never waits; lets a late open through
  }
  auto matching = std::async(std::launch::async, [&] {
    std::vector<Event> out;
    std::uint64_t after = 0;
    return worker.apply(generator.batch(50), out, after) && !out.empty();
  });
  EXPECT_EQ(matching.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "a batch waited for the prune";
  answered_in_time("a call while the prune hangs");
  EXPECT_EQ(files(), before) << "a second prune ran beside the one that hangs";
  ::close(writer);  // the prune reads nothing from it, and goes on
  for (std::future<void>& call : calls) call.get();
  for (int tries = 0; std::filesystem::exists(stuck) && tries < 10'000; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(matching.get());
  // Kept: the snapshots at 600 and 900 and the segments from 600 on. Deleted: the two
  // segments before, the snapshot at 300 and the FIFO (older, unreadable).
  // Asked until one is answered finished (the prune that hung may still be deleting, on
  // a slow host past the bound): by then every prune asked before it has ended.
  std::optional<std::size_t> deleted;
  for (int tries = 0; !deleted && tries < 100; ++tries) ASSERT_TRUE(worker.persisted(UINT64_MAX, deleted));
  EXPECT_EQ(deleted, std::optional<std::size_t>(0)) << "nothing left to prune, and answered so";
  EXPECT_EQ(files(), before - 4);
  std::filesystem::remove_all(dir);
}

// A long batch, applied on another thread, and what a follower read of it once the
// journal first grew (the engine's Replay with follow reads the same way).
struct FollowedBatch {
  std::vector<Event> answer;
  std::uint64_t end = 0;  // the sequence after the batch
  std::vector<Event> early;
  std::uint64_t early_next = 0;  // the sequence after what the follower got
};

constexpr std::size_t kLongBatch = 100'000;  // about 0.1 s of matching, a few events a command
constexpr std::size_t kLongBatchLog = 1 << 19;

FollowedBatch follow_a_long_batch(PartitionWorker& worker, const std::vector<Command>& batch,
                                  const std::function<void()>& once_journal_grew = [] {}) {
  FollowedBatch out;
  auto applying = std::async(std::launch::async, [&] { return worker.apply(batch, out.answer, out.end); });
  EXPECT_TRUE(worker.wait_journaled(1, std::chrono::seconds(30)));
  once_journal_grew();
  bool evicted = false;
  std::uint64_t first = 0;
  EXPECT_TRUE(worker.read_events(1, kLongBatchLog, out.early, out.early_next, evicted, first));
  EXPECT_FALSE(evicted);
  EXPECT_TRUE(applying.get());
  EXPECT_LT(out.answer.size(), kLongBatchLog);  // the log held all of it
  return out;
}

std::vector<Event> rebuilt_from_journal(const PartitionWorker& worker, std::uint64_t until) {
  std::vector<Event> rebuilt;
  EXPECT_TRUE(worker.history(1, until, [&rebuilt](const Event& event) {
    rebuilt.push_back(event);
    return true;
  }));
  return rebuilt;
}

TEST(PartitionWorker, ALongBatchReachesFollowersInPartsBeforeItIsAnswered) {
  const std::string dir = fresh_dir("parts");
  CommandGenerator generator(24);
  const std::vector<Command> batch = generator.batch(kLongBatch);
  StoredWorker stored(dir, kLongBatchLog, std::chrono::microseconds(1));
  const FollowedBatch followed = follow_a_long_batch(*stored.worker, batch);
  EXPECT_GT(followed.early_next, 1u);
  EXPECT_LT(followed.early_next, followed.end) << "the follower waited for the whole batch";
  // What the follower got is the start of the answer, event for event.
  ASSERT_EQ(followed.early.size(), followed.early_next - 1);
  const std::vector<Event> start(followed.answer.begin(),
                                 followed.answer.begin() + static_cast<std::ptrdiff_t>(followed.early.size()));
  EXPECT_EQ(events_text(followed.early), events_text(start));
  // The journal holds the batch as parts, each with the clock its events carry: rebuilt,
  // they are the answer, times included.
  std::set<std::int64_t> clocks;
  for (const Event& event : followed.answer) clocks.insert(event.timestamp_ns);
  EXPECT_GT(clocks.size(), 1u);
  EXPECT_EQ(events_text(rebuilt_from_journal(*stored.worker, followed.end)), events_text(followed.answer));
  stored.worker.reset();  // its snapshot child done before the dir goes
  std::filesystem::remove_all(dir);
}

TEST(PartitionWorker, WithoutPartsAFollowerGetsALongBatchOnlyWhole) {
  const std::string dir = fresh_dir("no-parts");
  CommandGenerator generator(24);
  StoredWorker stored(dir, kLongBatchLog, std::chrono::microseconds(0));
  const FollowedBatch followed = follow_a_long_batch(*stored.worker, generator.batch(kLongBatch));
  EXPECT_EQ(followed.early_next, followed.end);
  std::set<std::int64_t> clocks;
  for (const Event& event : followed.answer) clocks.insert(event.timestamp_ns);
  EXPECT_EQ(clocks.size(), 1u);
  stored.worker.reset();  // its snapshot child done before the dir goes
  std::filesystem::remove_all(dir);
}

TEST(PartitionWorker, ACrashBetweenPartsKeepsTheJournaledPartsAndTheResentBatchCompletesThem) {
  // The data directory copied while a long batch is applied is what a SIGKILL then
  // leaves: some parts journaled, perhaps one torn. The batch resent to an engine
  // recovered from it is answered as the first engine answered it, and ends in the
  // same books.
  const std::string dir = fresh_dir("parts-crash");
  const std::string crashed = fresh_dir("parts-crash-image");
  CommandGenerator generator(25);
  const std::vector<Command> batch = generator.batch(kLongBatch);
  FollowedBatch followed;
  BookView whole_book;
  {
    StoredWorker stored(dir, kLongBatchLog, std::chrono::microseconds(1));
    followed = follow_a_long_batch(*stored.worker, batch, [&] {
      using std::filesystem::copy_options;
      std::filesystem::copy(dir, crashed, copy_options::recursive | copy_options::overwrite_existing);
    });
    bool found = false;
    ASSERT_TRUE(stored.worker->book(1, SIZE_MAX, whole_book, found));
  }
  StoredWorker recovered(crashed, kLongBatchLog, std::chrono::microseconds(1));
  HealthView health;
  ASSERT_TRUE(recovered.worker->health(health));
  EXPECT_GT(health.commands_applied, 0u);
  EXPECT_LT(health.commands_applied, batch.size()) << "the copy was not taken mid-batch";
  const std::vector<Event> again = recovered.apply(batch);
  EXPECT_EQ(events_text(again, false), events_text(followed.answer, false));
  BookView book;
  bool found = false;
  ASSERT_TRUE(recovered.worker->book(1, SIZE_MAX, book, found));
  ASSERT_EQ(book.bids.size(), whole_book.bids.size());
  ASSERT_EQ(book.asks.size(), whole_book.asks.size());
  for (std::size_t i = 0; i < book.bids.size(); ++i) EXPECT_EQ(book.bids[i].quantity, whole_book.bids[i].quantity);
  for (std::size_t i = 0; i < book.asks.size(); ++i) EXPECT_EQ(book.asks[i].quantity, whole_book.asks[i].quantity);
  EXPECT_EQ(book.sequence, whole_book.sequence);
  recovered.worker.reset();  // its snapshot child done before the dir goes
  std::filesystem::remove_all(dir);
  std::filesystem::remove_all(crashed);
}

}  // namespace
}  // namespace venue::testing
