// What a partition keeps on disk in its --data-dir: the input journal and snapshots,
// and the three things done with them: recovery at start (latest good snapshot, then
// the journal after it), appending each applied batch (group commit), and rebuilding
// old events on demand (Replay and resends reach further back than memory holds).
//
// Old events are not stored: they are recomputed. Matching is deterministic given the
// commands, their batch clock and the self-trade mode (all journaled), so running the
// journal again from the snapshot before sequence N yields exactly the events from N on.
//
// Pruning (prune()): once the writer has persisted every event before a snapshot, the
// journal before it is needed only to rebuild old events, which Postgres now holds. Of
// the snapshots the writer has persisted past, the newest `keep_snapshots` stay (a damaged
// newest one falls back to the one before), with every segment from the oldest of them
// on; older snapshots and segments are deleted. A rebuild of events before that point is
// refused (history() answers false), never answered from a partial journal.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "book/event.h"
#include "book/instrument.h"
#include "journal/journal.h"
#include "matching/exchange.h"

namespace venue {

struct StoreOptions {
  std::string dir;
  FsyncPolicy fsync = FsyncPolicy::Batch;
  int fsync_interval_ms = 5;
  std::uint64_t snapshot_every = 1'000'000;  // commands between snapshots; 0: never
  std::size_t keep_snapshots = 2;  // persisted-past snapshots kept by prune(); 0: keep all
  // Snapshots written by a forked child from the copy-on-write image of the moment,
  // while matching goes on; false: on the calling (matching) thread.
  bool snapshot_in_background = true;
  // A child still writing after this long (a disk that hangs, a lock another thread held
  // at the fork) is killed, and the next snapshot written in place.
  std::chrono::milliseconds snapshot_child_limit{120'000};
};

struct PruneReport {
  std::vector<std::string> deleted;  // the files removed, for the log
};

struct RecoveryReport {
  bool from_snapshot = false;
  std::uint64_t snapshot_commands = 0;  // commands the snapshot covered
  std::uint64_t replayed_commands = 0;  // applied again from the journal after it
  std::uint64_t replayed_batches = 0;
  std::size_t segments = 0;
  std::vector<std::string> notes;  // torn tails truncated, snapshots skipped: for the log
};

class PartitionStore {
 public:
  // `instruments` in ascending id, as the exchange holds them.
  PartitionStore(StoreOptions options, std::uint32_t partition, std::vector<Instrument> instruments,
                 ExchangeOptions exchange_options);
  ~PartitionStore();  // waits for a snapshot being written
  PartitionStore(const PartitionStore&) = delete;
  PartitionStore& operator=(const PartitionStore&) = delete;

  // Brings a fresh `exchange` (instruments added, nothing applied) to the end of the
  // journal, its events going to the exchange's sink, then opens a new segment to
  // append to under the exchange's self-trade mode. Throws std::runtime_error when the
  // files cannot be used (a gap in the journal, other instruments, unreadable).
  RecoveryReport recover(Exchange& exchange);

  // One applied batch, on the matching thread: the commands that were applied (not the
  // duplicates), then commit() once for however many batches were built.
  void begin_batch(std::uint64_t first_command, std::int64_t timestamp_ns) { writer_.begin_batch(first_command, timestamp_ns); }
  void add(const Command& command) { writer_.add(command); }
  void end_batch() { writer_.end_batch(); }
  void commit() { writer_.commit(); }

  // After a commit: takes a snapshot and starts a new segment when --snapshot-every
  // commands went by since the last one, and at least as many as the last one held
  // resting orders. In the background (the default), a forked child writes the file
  // from the exchange as it stands while the caller goes on matching; one at a time; a
  // child that fails or is killed is said on stderr, its temporary file removed, and
  // the next snapshot is written in place. True when a snapshot was finished by this
  // call: written in place, or a child found done.
  bool maybe_snapshot(const Exchange& exchange);
  // Whether the snapshot being written is done, without waiting (an idle partition's
  // child is found here); true when it was finished.
  bool poll_snapshot() { return reap_snapshot(false); }
  // Waits for the snapshot being written, if any; true when it was finished.
  bool finish_snapshot();

  // Any thread but the matching thread, one call at a time: deletes what the journal no
  // longer needs, given that every event with sequence <= persisted_through is in
  // Postgres (see the top of this file). It goes by the files' names and the snapshots'
  // headers: the matching thread only adds files meanwhile (a new segment, a finished
  // snapshot renamed into place), and never the last segment is deleted.
  PruneReport prune(std::uint64_t persisted_through);

  // Any thread: the events with sequence in [from, until), rebuilt from the snapshot
  // before `from` and the journal's first `durable_commands` commands, in order, to
  // `visit` (which returns false to stop early). Returns false when the journal does
  // not reach back to `from` (it was pruned, or a file cannot be read) or ends before
  // `until`.
  bool history(std::uint64_t from, std::uint64_t until, std::uint64_t durable_commands,
               const std::function<bool(const Event&)>& visit) const;

  const StoreOptions& options() const { return options_; }
  std::uint64_t snapshots_written() const { return snapshots_written_; }
  pid_t snapshot_writer() const { return snapshot_child_; }  // the child writing one, or -1
  std::uint64_t journal_syncs() const { return writer_.syncs(); }

 private:
  struct Segment {
    std::uint64_t first_command;
    std::string path;
  };
  std::vector<Segment> segments() const;
  // (commands covered, path) of every snapshot, oldest first.
  std::vector<std::pair<std::uint64_t, std::string>> snapshots() const;
  JournalHeader header_for(const Exchange& exchange) const;
  bool start_snapshot_child(const Exchange& exchange);  // false: fork failed
  bool reap_snapshot(bool wait);  // true when the child finished its file
  bool history_from_files(std::uint64_t from, std::uint64_t until, std::uint64_t durable_commands,
                          const std::function<bool(const Event&)>& visit) const;
  // Applies the journal's records that continue `exchange` (records it already holds
  // are skipped), each segment under its own self-trade mode, until `limit` commands or
  // `stop()`. With `report` (recovery) torn tails are truncated and noted.
  void replay(Exchange& exchange, std::uint64_t limit, const std::function<bool()>& stop,
              RecoveryReport* report) const;

  StoreOptions options_;
  std::uint32_t partition_;
  std::vector<Instrument> instruments_;
  ExchangeOptions exchange_options_;
  JournalWriter writer_;
  std::uint64_t last_snapshot_ = 0;
  std::uint64_t last_snapshot_orders_ = 0;  // resting orders the last snapshot held
  std::string snapshot_buffer_;  // snapshots are encoded through it, a chunk at a time
  std::uint64_t snapshots_written_ = 0;
  pid_t snapshot_child_ = -1;  // writing snapshot_child_path_
  std::string snapshot_child_path_;
  std::chrono::steady_clock::time_point snapshot_child_started_;
  std::int64_t snapshot_fork_us_ = 0;  // what the fork cost the matching thread
  bool next_in_place_ = false;  // the last child failed
  cpu_set_t background_cpus_;  // the child's CPUs: the process's, not the matching thread's
};

}  // namespace venue
