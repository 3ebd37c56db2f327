// The journal and snapshots: what is written comes back; a torn tail is cut; a restart
// from snapshot + journal reaches the very state (books, sequences, trade ids, marks)
// of a run that never stopped, and old events are rebuilt exactly.
#include "journal/journal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "command_generator.h"
#include "event_text.h"
#include "journal/byte_codec.h"
#include "journal/partition_store.h"
#include "journal/snapshot.h"
#include "recording_sink.h"

namespace venue::testing {
namespace {

namespace fs = std::filesystem;

const std::vector<Instrument> kInstruments{Instrument{1, 1, 1000}, Instrument{2, 1, 1000}};

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("venue-journal-test-" + std::to_string(::getpid()) + "-" +
                                         std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string str() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

// A partition as the worker runs it, minus the thread: exchange + store, batch by batch.
struct Partition {
  Partition(const std::string& dir, std::uint64_t snapshot_every, StpMode stp = StpMode::CancelNewest,
            std::chrono::milliseconds snapshot_child_limit = StoreOptions{}.snapshot_child_limit)
      : exchange(sink, options(stp)),
        store(store_options(dir, snapshot_every, snapshot_child_limit), 0, kInstruments, options(stp)) {
    for (const Instrument& instrument : kInstruments) exchange.add_instrument(instrument);
    recovery = store.recover(exchange);
  }

  static ExchangeOptions options(StpMode stp) {
    ExchangeOptions out;
    out.order_capacity = 64;
    out.level_capacity = 16;
    out.stp_mode = stp;
    out.command_index_per_shard = 128;
    out.done_order_capacity = 32;  // full, and forgetting, within a test's commands
    return out;
  }
  static StoreOptions store_options(const std::string& dir, std::uint64_t snapshot_every,
                                    std::chrono::milliseconds snapshot_child_limit =
                                        StoreOptions{}.snapshot_child_limit) {
    StoreOptions out;
    out.dir = dir;
    out.fsync = FsyncPolicy::None;  // the page cache is enough within one test process
    out.snapshot_every = snapshot_every;
    out.snapshot_child_limit = snapshot_child_limit;
    return out;
  }

  // `wait`: for a snapshot the batch started, so counts are of files written.
  void apply(const std::vector<Command>& batch, std::int64_t clock, bool wait = true) {
    store.begin_batch(exchange.commands_applied(), clock);
    for (const Command& command : batch) {
      if (exchange.apply(command, clock) == ApplyResult::Applied) store.add(command);
    }
    store.end_batch();
    store.commit();
    store.maybe_snapshot(exchange);
    if (wait) store.finish_snapshot();
  }

  RecordingSink sink;
  Exchange exchange;
  PartitionStore store;
  RecoveryReport recovery;
};

// Runs `batches` batches of `size` generated commands through a partition in `dir`.
// The batch clock counts commands applied, so a run resumed after a restart stamps
// what a run that never stopped would.
std::vector<Event> run(Partition& partition, CommandGenerator& generator, int batches, std::size_t size) {
  for (int b = 0; b < batches; ++b) {
    partition.apply(generator.batch(size), 1'000 + static_cast<std::int64_t>(partition.exchange.commands_applied()));
  }
  return partition.sink.take();
}

// One batch of 20 at run()'s batch clock, not waiting for a snapshot it starts.
void step(Partition& partition, CommandGenerator& generator) {
  partition.apply(generator.batch(20), 1'000 + static_cast<std::int64_t>(partition.exchange.commands_applied()),
                  /*wait=*/false);
}

// The state `batches` batches of `size` commands from generator `seed` leave in a
// partition that never stopped.
std::string uninterrupted_state(std::uint64_t seed, int batches, std::size_t size) {
  TempDir dir;
  CommandGenerator generator(seed);
  Partition partition(dir.str(), 0);
  run(partition, generator, batches, size);
  return exchange_state_text(partition.exchange);
}

// The same commands journaled in `dir`, a snapshot every `every` commands, then stopped.
void journal_with_snapshots(const std::string& dir, std::uint64_t seed, int batches, std::size_t size,
                            std::uint64_t every) {
  CommandGenerator generator(seed);
  Partition partition(dir, every);
  run(partition, generator, batches, size);
}

TEST(Journal, Crc32cIsCastagnolisWithOrWithoutTheCpusInstruction) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32c(check.data(), check.size()), 0xE3069283u);  // the standard check value
  EXPECT_EQ(crc32c_portable(check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  std::mt19937_64 random(3);
  std::string bytes(4099, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  for (std::size_t size : {1u, 7u, 8u, 9u, 63u, 64u, 4099u}) {
    for (std::size_t offset : {0u, 1u, 3u}) {
      if (offset + size > bytes.size()) continue;
      const char* at = bytes.data() + offset;
      EXPECT_EQ(crc32c(at, size), crc32c_portable(at, size)) << size << " at " << offset;
      const std::size_t half = size / 2;  // a checksum continued over a second part
      EXPECT_EQ(crc32c(at + half, size - half, crc32c(at, half)), crc32c_portable(at, size));
    }
  }
}

TEST(Journal, EveryCommandKindComesBackAsWritten) {
  CommandGenerator generator(7);
  std::string bytes;
  ByteWriter out(bytes);
  std::vector<Command> written = generator.batch(500);
  Command unknown;
  unknown.origin = CommandOrigin{4, 5, 6};
  written.push_back(unknown);
  for (const Command& command : written) encode_command(command, out);
  ByteReader in(bytes);
  for (const Command& expected : written) {
    Command got;
    ASSERT_TRUE(decode_command(in, got));
    ASSERT_EQ(got.type, expected.type);
    EXPECT_EQ(got.origin.shard, expected.origin.shard);
    EXPECT_EQ(got.origin.stream_seq, expected.origin.stream_seq);
    EXPECT_EQ(got.origin.entry_index, expected.origin.entry_index);
    if (got.type == CommandType::New) {
      EXPECT_EQ(got.new_order.client_order_id, expected.new_order.client_order_id);
      EXPECT_EQ(got.new_order.price, expected.new_order.price);
      EXPECT_EQ(got.new_order.time_in_force, expected.new_order.time_in_force);
      EXPECT_EQ(got.new_order.post_only, expected.new_order.post_only);
    } else if (got.type == CommandType::Replace) {
      EXPECT_EQ(got.replace.quantity, expected.replace.quantity);
    } else if (got.type == CommandType::ExpireDay) {
      EXPECT_EQ(got.expire_day.instrument_id, expected.expire_day.instrument_id);
    }
  }
  EXPECT_TRUE(in.at_end());
}

TEST(Journal, RestartFromJournalAloneReachesTheSameStateAndContinuesIdentically) {
  TempDir dir;
  CommandGenerator first(11);
  CommandGenerator second(11);
  Partition never_stopped(TempDir().str(), 0);
  std::vector<Event> expected = run(never_stopped, first, 40, 25);
  {
    Partition before(dir.str(), 0);
    run(before, second, 20, 25);
  }
  Partition after(dir.str(), 0);
  EXPECT_FALSE(after.recovery.from_snapshot);
  EXPECT_EQ(after.recovery.replayed_commands, 500u);
  std::vector<Event> replayed = after.sink.take();  // recovery re-emits what it replays
  std::vector<Event> continued = run(after, second, 20, 25);
  replayed.insert(replayed.end(), continued.begin(), continued.end());
  EXPECT_EQ(events_text(replayed), events_text(expected));
  EXPECT_EQ(exchange_state_text(after.exchange), exchange_state_text(never_stopped.exchange));
}

TEST(Journal, EveryFsyncPolicyJournalsWhatARestartNeeds) {
  for (FsyncPolicy policy : {FsyncPolicy::Batch, FsyncPolicy::Interval, FsyncPolicy::None}) {
    TempDir dir;
    CommandGenerator first(19);
    CommandGenerator second(19);
    Partition never_stopped(TempDir().str(), 0);
    run(never_stopped, first, 10, 10);
    {
      RecordingSink sink;
      Exchange exchange(sink, Partition::options(StpMode::CancelNewest));
      for (const Instrument& instrument : kInstruments) exchange.add_instrument(instrument);
      StoreOptions options = Partition::store_options(dir.str(), 0);
      options.fsync = policy;
      options.fsync_interval_ms = 1;
      PartitionStore store(options, 0, kInstruments, Partition::options(StpMode::CancelNewest));
      store.recover(exchange);
      for (int b = 0; b < 10; ++b) {
        const auto clock = 1'000 + static_cast<std::int64_t>(exchange.commands_applied());
        store.begin_batch(exchange.commands_applied(), clock);
        for (const Command& command : second.batch(10)) {
          if (exchange.apply(command, clock) == ApplyResult::Applied) store.add(command);
        }
        store.end_batch();
        store.commit();
      }
      EXPECT_EQ(store.journal_syncs(), policy == FsyncPolicy::Batch ? 10u : 0u);
    }
    Partition after(dir.str(), 0);
    EXPECT_EQ(exchange_state_text(after.exchange), exchange_state_text(never_stopped.exchange));
  }
}

// Resting buy orders that never meet a seller, `count` of them, one command per batch.
void rest_buys(Partition& partition, OrderId first_id, int count) {
  for (int i = 0; i < count; ++i) {
    NewOrder order;
    order.order_id = first_id + static_cast<OrderId>(i);
    order.client_order_id = "rest";
    order.account_id = 1;
    order.instrument_id = 1;
    order.side = Side::Buy;
    order.type = OrderType::Limit;
    order.time_in_force = TimeInForce::Gtc;
    order.price = 1 + i % 100;
    order.quantity = 1;
    CommandOrigin origin{0, 1'700'000'000'000, static_cast<std::uint64_t>(first_id) + static_cast<std::uint64_t>(i)};
    partition.apply({Command::make(origin, order)}, 1'000 + i);
  }
}

TEST(Journal, SnapshotsWaitForAsManyCommandsAsTheLastOneHeldOrders) {
  TempDir dir;
  {
    Partition partition(dir.str(), 10);
    rest_buys(partition, 1, 25);  // due at 10 commands (it holds 10 orders), and at 20
    EXPECT_EQ(partition.store.snapshots_written(), 2u);
    rest_buys(partition, 26, 14);  // the one at 20 holds 20 orders: 19 commands since is not
    EXPECT_EQ(partition.store.snapshots_written(), 2u);  // enough
    rest_buys(partition, 40, 1);  // 20 is
    EXPECT_EQ(partition.store.snapshots_written(), 3u);
    rest_buys(partition, 41, 39);  // it holds 40
    EXPECT_EQ(partition.store.snapshots_written(), 3u);
    rest_buys(partition, 80, 1);
    EXPECT_EQ(partition.store.snapshots_written(), 4u);
  }
  Partition after(dir.str(), 10);
  EXPECT_EQ(after.recovery.snapshot_commands, 80u);
  // Recovered with 80 resting orders: the next snapshot waits 80 commands.
  rest_buys(after, 81, 79);
  EXPECT_EQ(after.store.snapshots_written(), 0u);
  rest_buys(after, 160, 1);
  EXPECT_EQ(after.store.snapshots_written(), 1u);
}

TEST(Journal, ASnapshotIsWrittenByAChildFromTheMomentItWasDueWhileMatchingGoesOn) {
  TempDir dir;
  CommandGenerator first(21);
  CommandGenerator second(21);
  Partition never_stopped(TempDir().str(), 0);
  Partition partition(dir.str(), 100);
  for (int b = 0; b < 5; ++b) step(partition, first);
  // Due at 100 commands: a child holds the exchange as it stood then.
  const pid_t writer = partition.store.snapshot_writer();
  ASSERT_GT(writer, 0);
  EXPECT_NE(writer, ::getpid());
  EXPECT_EQ(partition.store.snapshots_written(), 0u);
  run(never_stopped, second, 5, 20);
  const std::string at_100 = exchange_state_text(never_stopped.exchange);
  // Matching goes on meanwhile (the child is found done by a later batch, or waited for).
  for (int b = 5; b < 8; ++b) step(partition, first);
  partition.store.finish_snapshot();
  EXPECT_EQ(partition.store.snapshot_writer(), -1);
  EXPECT_EQ(partition.store.snapshots_written(), 1u);
  EXPECT_FALSE(fs::exists(dir.str() + "/snapshot-00000000000000000100.snap.tmp"));

  // The file holds the moment it was due, not what came after.
  Partition scratch(TempDir().str(), 0);
  std::string why;
  ASSERT_TRUE(load_snapshot(dir.str() + "/snapshot-00000000000000000100.snap", 0, kInstruments, scratch.exchange, why))
      << why;
  EXPECT_EQ(exchange_state_text(scratch.exchange), at_100);
}

TEST(Journal, ASnapshotChildThatFailsLeavesTheJournalWholeAndTheNextIsWrittenInPlace) {
  TempDir dir;
  CommandGenerator first(22);
  CommandGenerator second(22);
  Partition never_stopped(TempDir().str(), 0);
  run(never_stopped, second, 12, 20);
  {
    Partition before(dir.str(), 100);
    // The child cannot create its file: a directory stands in its name.
    fs::create_directories(dir.str() + "/snapshot-00000000000000000100.snap.tmp/in-the-way");
    for (int b = 0; b < 5; ++b) step(before, first);
    ASSERT_GT(before.store.snapshot_writer(), 0);
    EXPECT_FALSE(before.store.finish_snapshot());
    EXPECT_EQ(before.store.snapshots_written(), 0u);
    EXPECT_FALSE(fs::exists(dir.str() + "/snapshot-00000000000000000100.snap"));
    // The next one, due at 200 (the one at 100 would have held fewer orders than 100
    // commands), is written on the calling thread: done when maybe_snapshot returns.
    for (int b = 5; b < 12; ++b) step(before, first);
    EXPECT_EQ(before.store.snapshot_writer(), -1);
    EXPECT_EQ(before.store.snapshots_written(), 1u);
  }
  fs::remove_all(dir.str() + "/snapshot-00000000000000000100.snap.tmp");
  // An unfinished temporary file, as an engine killed mid-snapshot leaves it: removed.
  std::ofstream(dir.str() + "/snapshot-00000000000000000230.snap.tmp") << "half";
  Partition after(dir.str(), 100);
  EXPECT_EQ(after.recovery.snapshot_commands, 200u);
  EXPECT_FALSE(fs::exists(dir.str() + "/snapshot-00000000000000000230.snap.tmp"));
  EXPECT_EQ(exchange_state_text(after.exchange), exchange_state_text(never_stopped.exchange));
}

TEST(Journal, ASnapshotChildStuckPastItsLimitIsKilledAndTheNextIsWrittenInPlace) {
  TempDir dir;
  CommandGenerator first(22);
  CommandGenerator second(22);
  Partition never_stopped(TempDir().str(), 0);
  run(never_stopped, second, 12, 20);
  const std::string stuck = dir.str() + "/snapshot-00000000000000000100.snap.tmp";
  {
    Partition before(dir.str(), 100, StpMode::CancelNewest, std::chrono::milliseconds(300));
    // A FIFO nobody reads where the child writes its file: its open never returns, as
    // on a disk that hangs.
    ASSERT_EQ(::mkfifo(stuck.c_str(), 0644), 0);
    for (int b = 0; b < 5; ++b) step(before, first);
    const pid_t child = before.store.snapshot_writer();
    ASSERT_GT(child, 0);
    EXPECT_FALSE(before.store.poll_snapshot());  // still "writing"
    EXPECT_EQ(before.store.snapshot_writer(), child);
    const auto waited_from = std::chrono::steady_clock::now();
    EXPECT_FALSE(before.store.finish_snapshot());  // waits out the limit, then kills it
    EXPECT_LT(std::chrono::steady_clock::now() - waited_from, std::chrono::seconds(5));
    EXPECT_EQ(before.store.snapshot_writer(), -1);
    EXPECT_EQ(::kill(child, 0), -1);  // reaped, not left a zombie
    EXPECT_EQ(errno, ESRCH);
    EXPECT_EQ(before.store.snapshots_written(), 0u);
    EXPECT_FALSE(fs::exists(stuck));
    // The next one is written on the calling thread: done when maybe_snapshot returns.
    for (int b = 5; b < 12; ++b) step(before, first);
    EXPECT_EQ(before.store.snapshot_writer(), -1);
    EXPECT_EQ(before.store.snapshots_written(), 1u);
  }
  Partition after(dir.str(), 100);
  EXPECT_TRUE(after.recovery.from_snapshot);
  EXPECT_GT(after.recovery.snapshot_commands, 100u);
  EXPECT_EQ(exchange_state_text(after.exchange), exchange_state_text(never_stopped.exchange));
}

TEST(Journal, RestartFromSnapshotPlusJournalReachesTheSameState) {
  TempDir dir;
  CommandGenerator first(12);
  CommandGenerator second(12);
  Partition never_stopped(TempDir().str(), 0);
  run(never_stopped, first, 37, 20);
  {
    Partition before(dir.str(), 100);
    run(before, second, 37, 20);
    EXPECT_EQ(before.store.snapshots_written(), 7u);  // at 100, 200, ..., 700 of 740 commands
  }
  Partition after(dir.str(), 100);
  EXPECT_TRUE(after.recovery.from_snapshot);
  EXPECT_EQ(after.recovery.snapshot_commands, 700u);
  EXPECT_EQ(after.recovery.replayed_commands, 40u);
  EXPECT_EQ(exchange_state_text(after.exchange), exchange_state_text(never_stopped.exchange));
  EXPECT_EQ(after.exchange.next_sequence(), never_stopped.exchange.next_sequence());
  EXPECT_EQ(after.exchange.next_trade_id(), never_stopped.exchange.next_trade_id());
  // The command index came back too: a resend is recognised with its original events.
  never_stopped.exchange.command_index().for_each([&](std::uint32_t shard, const StreamId& id, const EventRange& events) {
    EventRange found;
    ASSERT_TRUE(after.exchange.command_index().find(shard, id, found));
    EXPECT_EQ(found.first, events.first);
    EXPECT_EQ(found.count, events.count);
  });
}

TEST(Journal, ASnapshotOfManyChunksComesBackWhole) {
  // 150,000 resting orders, bids below asks on two instruments: a snapshot of about
  // 12MB, written in several chunks (each sent to the disk and dropped from the page
  // cache before the next is encoded), then one last batch in the journal after it.
  TempDir dir;
  constexpr std::uint64_t kOrders = 150'000;
  // A command's clientOrderId is a view: the texts live as long as the test.
  std::deque<std::string> client_order_ids;
  const auto resting = [&client_order_ids](std::uint64_t n) {
    NewOrder order;
    order.order_id = n + 1;
    order.client_order_id = client_order_ids.emplace_back("resting-" + std::to_string(n));
    order.account_id = 1 + n % 7;
    order.instrument_id = kInstruments[n % 2].id;
    order.side = n % 4 < 2 ? Side::Buy : Side::Sell;
    order.type = OrderType::Limit;
    order.time_in_force = TimeInForce::Gtc;
    order.price = order.side == Side::Buy ? 1 + static_cast<Price>(n % 400) : 600 + static_cast<Price>(n % 400);
    order.quantity = 1 + static_cast<Quantity>(n % 9);
    return Command::make(CommandOrigin{static_cast<std::uint32_t>(n % 3), 1'700'000'000'000, n + 1, 0}, order);
  };
  std::string before_state;
  {
    Partition before(dir.str(), kOrders);
    for (std::uint64_t first = 0; first < kOrders + 500; first += 500) {
      std::vector<Command> batch;
      for (std::uint64_t n = first; n < first + 500; ++n) batch.push_back(resting(n));
      before.apply(batch, 1'000 + static_cast<std::int64_t>(first));
    }
    EXPECT_EQ(before.store.snapshots_written(), 1u);
    before_state = exchange_state_text(before.exchange);
  }
  const std::string snapshot = dir.str() + "/" + snapshot_file_name(kOrders);
  ASSERT_TRUE(fs::exists(snapshot));
  EXPECT_GT(fs::file_size(snapshot), 2u * (4u << 20));  // more than two chunks
  Partition after(dir.str(), kOrders);
  EXPECT_TRUE(after.recovery.from_snapshot) << (after.recovery.notes.empty() ? "" : after.recovery.notes[0]);
  EXPECT_EQ(after.recovery.snapshot_commands, kOrders);
  EXPECT_EQ(after.recovery.replayed_commands, 500u);
  EXPECT_EQ(exchange_state_text(after.exchange), before_state);
}

TEST(Journal, TornLastRecordIsDetectedByItsChecksumAndTruncated) {
  TempDir dir;
  CommandGenerator generator(13);
  std::uint64_t next_sequence_after_two = 0;
  {
    Partition before(dir.str(), 0);
    run(before, generator, 2, 10);
    next_sequence_after_two = before.exchange.next_sequence();
    run(before, generator, 1, 10);
  }
  const std::string segment = dir.str() + "/" + journal_file_name(0);
  const auto size = fs::file_size(segment);
  fs::resize_file(segment, size - 7);  // the crash came mid-write of the third batch
  Partition after(dir.str(), 0);
  EXPECT_EQ(after.recovery.replayed_batches, 2u);
  EXPECT_EQ(after.exchange.next_sequence(), next_sequence_after_two);
  ASSERT_EQ(after.recovery.notes.size(), 1u);
  EXPECT_NE(after.recovery.notes[0].find("truncated torn tail"), std::string::npos);
  EXPECT_LT(fs::file_size(segment), size - 7);  // cut back to the last whole record
}

TEST(Journal, CorruptBytesInTheLastRecordAreCaughtByTheChecksum) {
  TempDir dir;
  CommandGenerator generator(14);
  {
    Partition before(dir.str(), 0);
    run(before, generator, 3, 10);
  }
  const std::string segment = dir.str() + "/" + journal_file_name(0);
  {
    std::fstream file(segment, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(-5, std::ios::end);
    file.put('\x5a');
  }
  Partition after(dir.str(), 0);
  EXPECT_EQ(after.recovery.replayed_batches, 2u);
}

TEST(Journal, DamageBeforeALaterSegmentRefusesToStartNamingTheFileAndChangesNothing) {
  TempDir dir;
  CommandGenerator generator(16);
  {
    Partition before(dir.str(), 100);  // a snapshot, and a new segment, every 100 commands
    run(before, generator, 30, 10);
  }
  for (const auto& entry : fs::directory_iterator(dir.str())) {  // replay from segment 0
    if (entry.path().filename().string().rfind("snapshot", 0) == 0) fs::remove(entry.path());
  }
  const std::string segment = dir.str() + "/" + journal_file_name(0);
  const auto size = fs::file_size(segment);
  {
    std::fstream file(segment, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(size / 2));
    const char flipped = static_cast<char>(file.peek() ^ 0x10);
    file.seekp(static_cast<std::streamoff>(size / 2));
    file.put(flipped);
  }
  try {
    Partition after(dir.str(), 100);
    ADD_FAILURE() << "recovered past a damaged segment";
  } catch (const std::runtime_error& error) {
    const std::string what = error.what();
    EXPECT_NE(what.find(segment + " is damaged at offset "), std::string::npos) << what;
    EXPECT_NE(what.find("refusing to start"), std::string::npos) << what;
  }
  EXPECT_EQ(fs::file_size(segment), size);  // not cut: what follows the damage is kept
}

// One byte of the snapshot at `commands` changed, inside what its checksum covers.
void damage_snapshot(const std::string& dir, std::uint64_t commands) {
  std::fstream file(dir + "/" + snapshot_file_name(commands), std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(40);
  file.put('\x01');
}

TEST(Journal, ACorruptSnapshotFallsBackToTheOneBefore) {
  TempDir dir;
  journal_with_snapshots(dir.str(), 15, 30, 10, 100);
  damage_snapshot(dir.str(), 300);
  Partition after(dir.str(), 100);
  EXPECT_EQ(after.recovery.snapshot_commands, 200u);
  EXPECT_EQ(exchange_state_text(after.exchange), uninterrupted_state(15, 30, 10));
}

TEST(Journal, ATruncatedSnapshotFallsBackToTheOneBeforeAndSaysSo) {
  TempDir dir;
  journal_with_snapshots(dir.str(), 17, 30, 10, 100);
  const std::string snapshot = dir.str() + "/" + snapshot_file_name(300);
  fs::resize_file(snapshot, fs::file_size(snapshot) / 2);  // a disk that lost its end
  Partition after(dir.str(), 100);
  EXPECT_EQ(after.recovery.snapshot_commands, 200u);
  EXPECT_EQ(exchange_state_text(after.exchange), uninterrupted_state(17, 30, 10));
  bool said = false;
  for (const std::string& note : after.recovery.notes) said |= note.find(snapshot) != std::string::npos;
  EXPECT_TRUE(said) << "no recovery note names " << snapshot;
}

TEST(Journal, RecoveryRefusesAJournalOfOtherInstruments) {
  TempDir dir;
  {
    Partition before(dir.str(), 0);
    CommandGenerator generator(16);
    run(before, generator, 1, 10);
  }
  RecordingSink sink;
  Exchange exchange(sink);
  exchange.add_instrument(Instrument{1, 1, 1000});
  PartitionStore store(Partition::store_options(dir.str(), 0), 0, {Instrument{1, 1, 1000}}, ExchangeOptions{});
  EXPECT_THROW(store.recover(exchange), std::runtime_error);
}

TEST(Journal, HistoryRebuildsExactlyTheEventsFirstEmittedFromAnySequence) {
  TempDir dir;
  CommandGenerator generator(17);
  Partition partition(dir.str(), 150);
  const std::vector<Event> emitted = run(partition, generator, 40, 20);
  const std::uint64_t durable = partition.exchange.commands_applied();
  for (std::uint64_t from : {std::uint64_t{1}, std::uint64_t{2}, emitted.size() / 3, emitted.size() - 5}) {
    std::vector<Event> rebuilt;
    ASSERT_TRUE(partition.store.history(from, emitted.size() + 1, durable, [&](const Event& event) {
      rebuilt.push_back(event);
      return true;
    }));
    const std::vector<Event> expected(emitted.begin() + static_cast<std::ptrdiff_t>(from - 1), emitted.end());
    EXPECT_EQ(events_text(rebuilt), events_text(expected)) << "from " << from;
  }
}

// The last event before a snapshot: the writer must have persisted through it.
std::uint64_t last_event_before(const std::string& dir, std::uint64_t snapshot_commands) {
  ExchangeCounters counters;
  EXPECT_TRUE(peek_snapshot(dir + "/" + snapshot_file_name(snapshot_commands), counters));
  return counters.next_sequence - 1;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Journal, PruningKeepsTheLastSnapshotsTheWriterPersistedPastAndTheJournalFromTheOldestOfThem) {
  TempDir dir;
  CommandGenerator generator(19);
  Partition partition(dir.str(), 100);
  const std::vector<Event> emitted = run(partition, generator, 35, 10);  // snapshots at 100, 200, 300
  const std::uint64_t durable = partition.exchange.commands_applied();
  const std::vector<std::string> everything = files_in(dir.str());
  ASSERT_EQ(everything.size(), 7u);  // 4 segments, 3 snapshots

  // The writer has persisted nothing, or not past two snapshots: nothing goes.
  EXPECT_TRUE(partition.store.prune(0).deleted.empty());
  EXPECT_TRUE(partition.store.prune(last_event_before(dir.str(), 200) - 1).deleted.empty());
  EXPECT_EQ(files_in(dir.str()), everything);

  // Past the snapshots at 100 and 200: the journal before 100 goes.
  EXPECT_EQ(partition.store.prune(last_event_before(dir.str(), 200)).deleted.size(), 1u);
  EXPECT_FALSE(fs::exists(dir.str() + "/" + journal_file_name(0)));

  // Past every snapshot: the two newest stay, with the journal from the one at 200.
  EXPECT_EQ(partition.store.prune(emitted.size()).deleted.size(), 2u);
  EXPECT_EQ(files_in(dir.str()), (std::vector<std::string>{
                                     journal_file_name(200), journal_file_name(300), snapshot_file_name(200),
                                     snapshot_file_name(300)}));

  // A rebuild of pruned events is refused, never answered from part of the journal; one
  // after the oldest snapshot kept is exact.
  EXPECT_FALSE(partition.store.history(1, emitted.size() + 1, durable, [](const Event&) { return true; }));
  const std::uint64_t from = last_event_before(dir.str(), 200) + 1;
  std::vector<Event> rebuilt;
  ASSERT_TRUE(partition.store.history(from, emitted.size() + 1, durable, [&](const Event& event) {
    rebuilt.push_back(event);
    return true;
  }));
  EXPECT_EQ(events_text(rebuilt),
            events_text(std::vector<Event>(emitted.begin() + static_cast<std::ptrdiff_t>(from - 1), emitted.end())));
}

TEST(Journal, AfterPruningARestartRecoversAndADamagedNewestSnapshotFallsBackToTheOneKept) {
  TempDir dir;
  {
    CommandGenerator generator(21);
    Partition partition(dir.str(), 100);
    const std::vector<Event> emitted = run(partition, generator, 35, 10);
    ASSERT_EQ(partition.store.prune(emitted.size()).deleted.size(), 3u);
  }
  {
    Partition after(dir.str(), 100);
    EXPECT_EQ(after.recovery.snapshot_commands, 300u);
    EXPECT_EQ(exchange_state_text(after.exchange), uninterrupted_state(21, 35, 10));
  }
  damage_snapshot(dir.str(), 300);
  Partition after(dir.str(), 100);
  EXPECT_EQ(after.recovery.snapshot_commands, 200u);
  EXPECT_EQ(exchange_state_text(after.exchange), uninterrupted_state(21, 35, 10));
}

TEST(Journal, SelfTradeModeOfEachSegmentIsReplayedAsItWasApplied) {
  TempDir dir;
  CommandGenerator first(18);
  CommandGenerator second(18);
  std::vector<Event> expected;
  {
    Partition newest(TempDir().str(), 0, StpMode::CancelNewest);
    expected = run(newest, first, 10, 20);
  }
  {
    Partition before(dir.str(), 0, StpMode::CancelNewest);
    run(before, second, 10, 20);
  }
  Partition after(dir.str(), 0, StpMode::CancelOldest);  // the venue changed its mode
  EXPECT_EQ(events_text(after.sink.take()), events_text(expected));
  EXPECT_EQ(after.exchange.stp_mode(), StpMode::CancelOldest);
}

}  // namespace
}  // namespace venue::testing
