#include "journal/partition_store.h"

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "journal/snapshot.h"

namespace venue {

namespace {

// Receives the events of a history rebuild, passing on those asked for.
class HistorySink final : public EventSink {
 public:
  HistorySink(std::uint64_t from, std::uint64_t until, const std::function<bool(const Event&)>& visit)
      : from_(from), until_(until), visit_(visit) {}
  void on_event(const Event& event) override {
    if (stopped_ || event.sequence < from_) return;
    if (event.sequence >= until_ || !visit_(event)) stopped_ = true;
  }
  bool stopped() const { return stopped_; }

 private:
  std::uint64_t from_;
  std::uint64_t until_;
  const std::function<bool(const Event&)>& visit_;
  bool stopped_ = false;
};

}  // namespace

PartitionStore::PartitionStore(StoreOptions options, std::uint32_t partition, std::vector<Instrument> instruments,
                               ExchangeOptions exchange_options)
    : options_(std::move(options)),
      partition_(partition),
      instruments_(std::move(instruments)),
      exchange_options_(exchange_options),
      writer_(options_.fsync, options_.fsync_interval_ms) {
  std::sort(instruments_.begin(), instruments_.end(),
            [](const Instrument& a, const Instrument& b) { return a.id < b.id; });
  // Built before the matching thread is pinned: the CPUs the whole process may use.
  CPU_ZERO(&background_cpus_);
  if (::sched_getaffinity(0, sizeof background_cpus_, &background_cpus_) != 0) CPU_ZERO(&background_cpus_);
}

std::vector<PartitionStore::Segment> PartitionStore::segments() const {
  std::vector<Segment> out;
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir)) {
    std::uint64_t first = 0;
    if (parse_journal_file_name(entry.path().filename().string(), first)) out.push_back({first, entry.path().string()});
  }
  std::sort(out.begin(), out.end(), [](const Segment& a, const Segment& b) { return a.first_command < b.first_command; });
  return out;
}

std::vector<std::pair<std::uint64_t, std::string>> PartitionStore::snapshots() const {
  std::vector<std::pair<std::uint64_t, std::string>> out;
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir)) {
    std::uint64_t commands = 0;
    if (parse_snapshot_file_name(entry.path().filename().string(), commands)) {
      out.emplace_back(commands, entry.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

JournalHeader PartitionStore::header_for(const Exchange& exchange) const {
  JournalHeader header;
  header.partition = partition_;
  header.stp_mode = exchange.stp_mode();
  header.instruments = instruments_;
  header.first_command = exchange.commands_applied();
  return header;
}

RecoveryReport PartitionStore::recover(Exchange& exchange) {
  RecoveryReport report;
  // Each segment's records are replayed under the mode they were applied under; the
  // configured mode applies from here on.
  const StpMode configured_mode = exchange.stp_mode();

  // A snapshot's temporary file left by an engine (and its child) killed mid-write:
  // never read, removed.
  for (const auto& entry : std::filesystem::directory_iterator(options_.dir)) {
    const std::string name = entry.path().filename().string();
    std::uint64_t commands = 0;
    if (name.size() > 4 && name.ends_with(".tmp") && parse_snapshot_file_name(name.substr(0, name.size() - 4), commands)) {
      std::error_code ignored;
      if (std::filesystem::remove(entry.path(), ignored)) report.notes.push_back("removed unfinished " + entry.path().string());
    }
  }
  const auto saved = snapshots();
  for (auto it = saved.rbegin(); it != saved.rend(); ++it) {
    std::string why;
    // The checksum is verified before anything is restored, so a bad file leaves the
    // exchange fresh and the next older snapshot can be tried.
    if (load_snapshot(it->second, partition_, instruments_, exchange, why)) {
      report.from_snapshot = true;
      report.snapshot_commands = it->first;
      break;
    }
    if (exchange.commands_applied() != 0 || exchange.next_sequence() != 1) {
      throw std::runtime_error("snapshot " + it->second + ": " + why);
    }
    report.notes.push_back("skipped snapshot " + it->second + ": " + why);
  }
  last_snapshot_ = exchange.commands_applied();

  replay(exchange, UINT64_MAX, [] { return false; }, &report);
  last_snapshot_orders_ = exchange.memory().live_orders.size();  // the next waits as long
  exchange.set_stp_mode(configured_mode);
  writer_.open_segment(options_.dir, header_for(exchange));
  return report;
}

bool PartitionStore::maybe_snapshot(const Exchange& exchange) {
  bool written = reap_snapshot(false);
  if (snapshot_child_ > 0) return written;  // one at a time
  const std::uint64_t since = exchange.commands_applied() - last_snapshot_;
  if (options_.snapshot_every == 0 || since < options_.snapshot_every) return written;
  // A snapshot writes every resting order: when the last one held more of them than
  // --snapshot-every, the next waits for as many commands. With the books growing by at
  // most an order a command, it holds at most twice as many orders as commands went by,
  // however deep the books (at a few million resting orders, a snapshot every million
  // commands was most of the engine's CPU); and recovery replays no more commands after
  // a snapshot than the one before it held orders.
  if (since < last_snapshot_orders_) return written;
  // On reserved hugepages a copy-on-write needs a spare hugepage per page the matching
  // thread writes (2 MiB copied on it each time), and without one the kernel takes the
  // page from the child (a SIGBUS): written in place there.
  const bool in_place = !options_.snapshot_in_background || next_in_place_ || exchange.memory().orders.any_on_hugepages();
  next_in_place_ = false;
  if (in_place || !start_snapshot_child(exchange)) {
    write_snapshot(options_.dir, partition_, instruments_, exchange, snapshot_buffer_);
    ++snapshots_written_;
    written = true;
  }
  // A fresh segment per snapshot: recovery and history start reading at a file boundary
  // (a snapshot that is never finished leaves the segments continuous).
  writer_.open_segment(options_.dir, header_for(exchange));
  last_snapshot_ = exchange.commands_applied();
  last_snapshot_orders_ = exchange.memory().live_orders.size();
  return written;
}

bool PartitionStore::start_snapshot_child(const Exchange& exchange) {
  const std::string path = options_.dir + "/" + snapshot_file_name(exchange.commands_applied());
  std::fflush(nullptr);  // nothing buffered is written twice
  const pid_t parent = ::getpid();
  const auto forking = std::chrono::steady_clock::now();
  const pid_t child = ::fork();
  if (child < 0) {
    std::fprintf(stderr, "venue-engine partition %u: cannot fork to write %s (%s); writing it on the matching thread\n",
                 partition_, path.c_str(), std::strerror(errno));
    return false;
  }
  if (child == 0) {
    // The child: the exchange as it stood after the last commit, copy-on-write. It
    // writes the file and leaves by _exit (no atexit handler, no destructor of the
    // parent's threads' objects runs here); it dies with the engine.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(3);
    // None of the engine's sockets, epoll or event fds held open by the child; no core
    // dump of the engine's memory if it dies; the one the OOM killer takes first.
    ::close_range(3, ~0U, 0);
    ::prctl(PR_SET_DUMPABLE, 0);
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    if (FILE* oom = std::fopen("/proc/self/oom_score_adj", "w")) {
      std::fputs("1000", oom);
      std::fclose(oom);
    }
    // Off the matching thread's CPU (inherited from it), and behind the engine's threads.
    cpu_set_t matching;
    cpu_set_t others = background_cpus_;
    if (::sched_getaffinity(0, sizeof matching, &matching) == 0) {
      for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &matching)) CPU_CLR(cpu, &others);
      }
    }
    const cpu_set_t& cpus = CPU_COUNT(&others) > 0 ? others : background_cpus_;
    if (CPU_COUNT(&cpus) > 0) (void)::sched_setaffinity(0, sizeof cpus, &cpus);
    (void)::setpriority(PRIO_PROCESS, 0, 10);
    try {
      write_snapshot(options_.dir, partition_, instruments_, exchange, snapshot_buffer_);
      ::_exit(0);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "venue-engine partition %u: snapshot %s failed: %s\n", partition_, path.c_str(), error.what());
      std::fflush(stderr);
      ::_exit(1);
    }
  }
  snapshot_child_ = child;
  snapshot_child_path_ = path;
  snapshot_child_started_ = std::chrono::steady_clock::now();
  snapshot_fork_us_ = std::chrono::duration_cast<std::chrono::microseconds>(snapshot_child_started_ - forking).count();
  return true;
}

bool PartitionStore::reap_snapshot(bool wait) {
  if (snapshot_child_ <= 0) return false;
  int status = 0;
  pid_t done = 0;
  for (;;) {
    done = ::waitpid(snapshot_child_, &status, WNOHANG);
    if (done < 0 && errno == EINTR) continue;
    if (done != 0) break;
    // Still writing. Past its limit (StoreOptions::snapshot_child_limit) it is killed: the
    // journal holds everything, and the next snapshot is written in place rather than
    // none ever again.
    if (std::chrono::steady_clock::now() - snapshot_child_started_ > options_.snapshot_child_limit) {
      ::kill(snapshot_child_, SIGKILL);
      do {
        done = ::waitpid(snapshot_child_, &status, 0);
      } while (done < 0 && errno == EINTR);
      break;
    }
    if (!wait) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const std::string path = std::move(snapshot_child_path_);
  snapshot_child_ = -1;
  if (done > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    ++snapshots_written_;
    const auto took = std::chrono::steady_clock::now() - snapshot_child_started_;
    std::fprintf(stderr, "venue-engine partition %u: wrote %s in the background (matching paused %lld us to fork; found done after %lld ms)\n",
                 partition_, path.c_str(), static_cast<long long>(snapshot_fork_us_),
                 static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
    return true;
  }
  // Killed (a copy-on-write hugepage it could not get is a SIGBUS), or it said why on
  // stderr: the journal still holds everything since the last snapshot. The next one is
  // written on the matching thread, so snapshots are taken whatever stops the child.
  std::error_code ignored;
  std::filesystem::remove(path + ".tmp", ignored);
  std::fprintf(stderr, "venue-engine partition %u: the process writing %s %s; the next snapshot is written on the matching thread\n",
               partition_, path.c_str(),
               done < 0 ? "was lost" : WIFSIGNALED(status) ? (std::string("was killed by signal ") + std::to_string(WTERMSIG(status))).c_str()
                                                          : "failed");
  next_in_place_ = true;
  return false;
}

bool PartitionStore::finish_snapshot() { return reap_snapshot(true); }

PartitionStore::~PartitionStore() { finish_snapshot(); }

void PartitionStore::replay(Exchange& exchange, std::uint64_t limit, const std::function<bool()>& stop,
                            RecoveryReport* report) const {
  const auto all = segments();
  if (report != nullptr) report->segments = all.size();
  for (const Segment& segment : all) {
    if (stop() || exchange.commands_applied() >= limit) break;
    bool gap = false;
    bool foreign = false;
    const SegmentScan scan = scan_segment(segment.path, [&](const JournalHeader& header, const JournalBatch& batch) {
      if (header.partition != partition_ || !same_instruments(header.instruments, instruments_)) {
        foreign = true;
        return false;
      }
      const std::uint64_t applied = exchange.commands_applied();
      if (batch.first_command + batch.commands.size() <= applied) return true;  // the snapshot holds it
      if (batch.first_command != applied) {
        gap = true;
        return false;
      }
      if (applied >= limit || stop()) return false;
      exchange.set_stp_mode(header.stp_mode);
      for (const Command& command : batch.commands) exchange.apply(command, batch.timestamp_ns);
      if (report != nullptr) {
        report->replayed_commands += batch.commands.size();
        ++report->replayed_batches;
      }
      return true;
    });
    if (foreign) {
      throw std::runtime_error("journal segment " + segment.path +
                               " was written for another partition or other instruments than --instrument gives");
    }
    if (gap) {
      throw std::runtime_error("journal segment " + segment.path + " does not continue from command " +
                               std::to_string(exchange.commands_applied()) + ": a segment is missing");
    }
    if (report != nullptr && scan.torn() && &segment != &all.back()) {
      // Only the last segment's end can be torn by a crash: damage before a later
      // segment holds answered batches, which cutting would lose. Nothing is changed.
      throw std::runtime_error("journal segment " + segment.path + " is damaged at offset " +
                               std::to_string(scan.valid_bytes) + " of " + std::to_string(scan.file_bytes) +
                               " (a record fails its checksum or does not decode) and later segments "
                               "follow: refusing to start rather than drop what they hold; restore "
                               "it from a copy, or move it and every later segment away to start "
                               "from what comes before");
    }
    if (report != nullptr && scan.torn()) {
      // Only an unanswered batch can be torn (answers wait for the write), so cutting
      // it loses nothing a submitter was told; it will send that batch again.
      truncate_segment(segment.path, scan.header_ok ? scan.valid_bytes : 0);
      report->notes.push_back("truncated torn tail of " + segment.path + ": " +
                              std::to_string(scan.file_bytes - scan.valid_bytes) + " bytes after offset " +
                              std::to_string(scan.valid_bytes));
    }
  }
}

PruneReport PartitionStore::prune(std::uint64_t persisted_through) {
  PruneReport report;
  if (options_.keep_snapshots == 0) return report;
  const auto saved = snapshots();  // oldest first
  // The snapshots every event before which is in Postgres.
  std::vector<std::size_t> persisted_past;
  for (std::size_t i = 0; i < saved.size(); ++i) {
    ExchangeCounters counters;
    if (peek_snapshot(saved[i].second, counters) && counters.next_sequence - 1 <= persisted_through) {
      persisted_past.push_back(i);
    }
  }
  if (persisted_past.size() < options_.keep_snapshots) return report;
  // The oldest snapshot kept: the journal must reach back to it, and nothing before it
  // is needed.
  const std::size_t oldest_kept = persisted_past[persisted_past.size() - options_.keep_snapshots];
  const std::uint64_t start = saved[oldest_kept].first;
  auto remove = [&report](const std::string& path) {
    std::error_code error;
    if (std::filesystem::remove(path, error)) report.deleted.push_back(path);
  };
  // A segment's commands end where the next segment's begin; the last one is written to.
  const auto all = segments();
  for (std::size_t i = 0; i + 1 < all.size() && all[i + 1].first_command <= start; ++i) remove(all[i].path);
  for (std::size_t i = 0; i < oldest_kept; ++i) remove(saved[i].second);
  return report;
}

bool PartitionStore::history(std::uint64_t from, std::uint64_t until, std::uint64_t durable_commands,
                             const std::function<bool(const Event&)>& visit) const {
  // Segments pruned (a gap before the first one left), or deleted while being read:
  // refused, never answered from part of the journal.
  try {
    return history_from_files(from, until, durable_commands, visit);
  } catch (const std::runtime_error&) {
    return false;
  }
}

bool PartitionStore::history_from_files(std::uint64_t from, std::uint64_t until, std::uint64_t durable_commands,
                                        const std::function<bool(const Event&)>& visit) const {
  if (from >= until) return true;
  HistorySink sink(from, until, visit);
  ExchangeOptions options = exchange_options_;
  options.order_capacity = 1 << 12;  // grows as needed; a rebuild is not the hot path
  options.level_capacity = 1 << 10;
  Exchange exchange(sink, options);
  for (const Instrument& instrument : instruments_) exchange.add_instrument(instrument);

  // Start from the latest snapshot at or before `from`, so the rebuild runs only the
  // journal between it and `from` (plus what is asked for).
  const auto saved = snapshots();
  for (auto it = saved.rbegin(); it != saved.rend(); ++it) {
    ExchangeCounters counters;
    if (it->first > durable_commands || !peek_snapshot(it->second, counters) || counters.next_sequence > from) continue;
    std::string why;
    if (load_snapshot(it->second, partition_, instruments_, exchange, why)) break;
    if (exchange.commands_applied() != 0 || exchange.next_sequence() != 1) return false;
  }
  if (exchange.next_sequence() > from) return false;
  replay(exchange, durable_commands, [&sink] { return sink.stopped(); }, nullptr);
  return sink.stopped() || exchange.next_sequence() >= until;
}

}  // namespace venue
