// The partition's matching thread: the only thread that touches the exchange and the
// journal. gRPC threads hand it work through a queue and wait for the result. Each pass
// of its loop takes every queued task, runs them, then commits the journal once for
// all the batches they applied (group commit) before any of them is answered. A pass
// that runs longer than WorkerOptions::commit_part commits what it has applied so far
// (a part), answers the tasks it has finished and serves the queued reads of the
// journal, then goes on: what the followers (the market feed) see lags the matching by
// at most a part, however long the pass.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "book/command.h"
#include "book/event.h"
#include "book/instrument.h"
#include "journal/partition_store.h"
#include "matching/exchange.h"
#include "server/event_log.h"
#include "server/pruner.h"

namespace venue {

// The wall clock in unix nanoseconds: event timestamps and a batch's timing.
std::int64_t unix_now_ns();

struct BookLevelView {
  Price price = 0;
  Quantity quantity = 0;
  std::uint32_t orders = 0;
};

struct BookView {
  std::vector<BookLevelView> bids;  // best first
  std::vector<BookLevelView> asks;  // best first
  std::uint64_t sequence = 0;       // the last sequence applied when it was taken
};

enum class OrderKnown : std::uint8_t { Unknown, Live, Done };

struct OrderView {
  OrderKnown known = OrderKnown::Unknown;
  ExecutionReport state;       // set unless unknown
  std::uint64_t sequence = 0;  // the last sequence applied when it was read
};

struct HealthView {
  std::uint64_t next_sequence = 0;
  std::uint64_t commands_applied = 0;
  std::uint64_t duplicates = 0;
  std::vector<std::pair<std::uint32_t, StreamId>> shard_marks;
};

struct WorkerOptions {
  std::uint32_t partition = 0;
  std::vector<Instrument> instruments;
  std::size_t event_log_capacity = 1 << 20;
  ExchangeOptions exchange;
  std::optional<StoreOptions> store;  // none: nothing on disk (tests of the matching thread)
  int cpu = -1;  // the CPU the matching thread pins itself to; -1: not pinned
  // A pass running this long commits a part (see the top); zero: only whole passes. The
  // engine's --commit-part-us.
  std::chrono::microseconds commit_part{5000};
};

class PartitionWorker {
 public:
  // Recovers from the store (when there is one) before the thread starts. Throws
  // std::invalid_argument for a duplicate instrument id or an invalid band, and
  // std::runtime_error when the data directory cannot be recovered.
  explicit PartitionWorker(const WorkerOptions& options);
  PartitionWorker(std::uint32_t partition, const std::vector<Instrument>& instruments,
                  std::size_t event_log_capacity, const ExchangeOptions& options = {});
  ~PartitionWorker();
  PartitionWorker(const PartitionWorker&) = delete;
  PartitionWorker& operator=(const PartitionWorker&) = delete;

  std::uint32_t partition() const { return partition_; }
  bool running() const;
  const RecoveryReport& recovery() const { return recovery_; }
  // The CPU the matching thread runs pinned to; -1 when not pinned (or pinning failed).
  int pinned_cpu() const { return pinned_cpu_.load(); }
  // Where the order pool lives, for the start-up log.
  const std::string& memory_summary() const { return memory_summary_; }

  // Each call below runs on the matching thread, in the order calls arrive, and
  // returns false once the worker has stopped. None returns before the journal commit
  // of its pass, so no answer (a shard mark in Health, a book) is ever ahead of what a
  // restart recovers.

  // Applies the commands in order and appends to `out`, in command order, the events
  // each produced; a duplicate (at or below its shard's mark) is not applied again and
  // contributes the events it produced the first time, so a resent batch is answered
  // as it was. `next_sequence` is the partition's next sequence after them. Returns
  // once the batch is in the journal.
  bool apply(const std::vector<Command>& commands, std::vector<Event>& out, std::uint64_t& next_sequence);

  // The same, in two steps, so a stream can decode its next batch while this one is
  // applied and journaled: post() queues the batch and returns at once (false once
  // stopped); finish() waits until it is journaled and completes `out`.
  class Batch {
   public:
    Batch() = default;
    Batch(const Batch&) = delete;  // the matching thread holds its address while posted
    Batch& operator=(const Batch&) = delete;

    const std::vector<Command>* commands = nullptr;
    std::vector<Event>* out = nullptr;
    std::uint64_t next_sequence = 0;
    // When the matching thread took it, had applied it, and had journaled it (unix ns).
    std::int64_t match_start_ns = 0;
    std::int64_t matched_ns = 0;
    std::int64_t journaled_ns = 0;

   private:
    friend class PartitionWorker;
    struct Gap {
      std::size_t position;
      EventRange events;
    };
    std::function<void()> work;
    const std::function<void()>* work_ref = nullptr;
    bool done = false;
    std::vector<Gap> gaps;
  };
  bool post(Batch& batch);
  void finish(Batch& batch);

  // Events from `from` on (at most `max`) into `out`. `evicted` is set when `from` is
  // older than the log holds; `first_retained` then says where it starts. It reads only
  // what is journaled, so it may be served at a part's commit, ahead of the batches
  // queued before it.
  bool read_events(std::uint64_t from, std::size_t max, std::vector<Event>& out, std::uint64_t& next_sequence,
                   bool& evicted, std::uint64_t& first_retained);

  // Waits (at most `timeout`) until an event at or past `from` is journaled. False when
  // none is by then, or the worker is stopping.
  bool wait_journaled(std::uint64_t from, std::chrono::milliseconds timeout);

  // Old events, rebuilt from the journal on the calling thread: [from, until), in
  // order, to `visit`. False without a store or when the journal does not hold them.
  bool history(std::uint64_t from, std::uint64_t until, const std::function<bool(const Event&)>& visit) const;

  // The writer's word that every event with sequence <= through is in Postgres (held to
  // what is journaled): the journal and snapshots it no longer needs are deleted
  // (PartitionStore::prune) on the pruner's thread, never on the matching thread (ext4
  // takes 10-30 ms to unlink each of the 65-110 MB files a million commands make, and
  // there a prune held every batch and the feed for as long) nor on the caller's, which
  // waits for it at most kPruneAnsweredWithin. `deleted`: the files that prune removed,
  // when it finished by then. False when the worker has stopped.
  static constexpr std::chrono::milliseconds kPruneAnsweredWithin{200};
  bool persisted(std::uint64_t through, std::optional<std::size_t>& deleted);

  // `found` is false for an unknown instrument.
  bool book(InstrumentId instrument_id, std::size_t depth, BookView& out, bool& found);

  bool health(HealthView& out);

  // One order, live or recently done.
  bool order(OrderId order_id, OrderView& out);

  // Finishes queued work, then stops the thread. Idempotent.
  void stop();

 private:
  // Collects events for the command batch being applied and keeps them for Replay.
  class Sink final : public EventSink {
   public:
    explicit Sink(std::size_t log_capacity) : log(log_capacity) {}
    void on_event(const Event& event) override {
      log.append(event);
      if (batch != nullptr) batch->push_back(event);
    }
    EventLog log;
    std::vector<Event>* batch = nullptr;
  };

  struct Task {
    const std::function<void()>* work;
    bool* done;
    std::int64_t* journaled_ns = nullptr;  // a posted Batch's: when its pass (or part) committed
    bool reads_journal = false;            // only reads what is journaled: served at any commit
  };

  bool run(const std::function<void()>& work, bool reads_journal = false);
  void apply_on_thread(Batch& batch);
  void loop();
  void commit_journal();
  void commit_pass();
  bool part_due() const;
  void commit_part();
  void answer_finished(std::int64_t journaled_ns);
  std::size_t prune(std::uint64_t persisted_through);  // on the pruner's thread

  const std::uint32_t partition_;
  const int cpu_;
  Sink sink_;
  Exchange exchange_;
  std::unique_ptr<PartitionStore> store_;
  RecoveryReport recovery_;
  // What is in the journal (written; synced per the policy): events past it are not
  // served by Replay, and history rebuilds stop there.
  std::atomic<std::uint64_t> durable_next_sequence_{1};
  std::atomic<std::uint64_t> durable_commands_{0};
  void capture_durable_state();
  std::atomic<int> pinned_cpu_{-1};
  std::string memory_summary_;
  bool batches_pending_ = false;
  std::uint64_t persisted_through_ = 0;  // matching thread only
  const std::int64_t commit_part_ns_;
  // The pass under way (matching thread only): its tasks, how many have run, how many
  // are answered, and when its current part began.
  std::deque<Task> taken_;
  std::size_t finished_ = 0;
  std::size_t answered_ = 0;
  std::int64_t part_started_ns_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::deque<Task> queue_;
  bool stopping_ = false;
  Pruner pruner_{[this](std::uint64_t mark) { return prune(mark); }};  // after store_
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace venue
