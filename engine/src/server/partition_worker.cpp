#include "server/partition_worker.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

namespace venue {

std::int64_t unix_now_ns() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

namespace {

// Inside a batch, how often the matching thread reads the clock to see whether a part is
// due: a read costs about 20 ns, a command about a microsecond.
constexpr std::size_t kCommandsBetweenClockReads = 16;

// Applied but not journaled: answering would promise what a restart cannot give back.
// Stop the process; the submitters resend, a restart recovers.
[[noreturn]] void journal_failed(std::uint32_t partition, const std::exception& error) {
  std::fprintf(stderr, "venue-engine partition %u: journal failed: %s; stopping\n", partition, error.what());
  std::abort();
}

WorkerOptions simple_options(std::uint32_t partition, const std::vector<Instrument>& instruments,
                             std::size_t event_log_capacity, const ExchangeOptions& exchange) {
  WorkerOptions options;
  options.partition = partition;
  options.instruments = instruments;
  options.event_log_capacity = event_log_capacity;
  options.exchange = exchange;
  return options;
}

// "65536 orders in 9728 KiB on 2 MiB hugepages", for the start-up log.
std::string describe_pool(const ObjectPool<Order>& orders, HugePages policy) {
  std::string where = "normal pages, transparent hugepages advised (none reserved)";
  if (orders.on_hugepages()) {
    where = "2 MiB hugepages";
  } else if (policy == HugePages::Off) {
    where = "normal pages";
  }
  return std::to_string(orders.capacity()) + " orders in " + std::to_string(orders.bytes() >> 10) + " KiB on " + where;
}

}  // namespace

PartitionWorker::PartitionWorker(std::uint32_t partition, const std::vector<Instrument>& instruments,
                                 std::size_t event_log_capacity, const ExchangeOptions& options)
    : PartitionWorker(simple_options(partition, instruments, event_log_capacity, options)) {}

PartitionWorker::PartitionWorker(const WorkerOptions& options)
    : partition_(options.partition),
      cpu_(options.cpu),
      sink_(options.event_log_capacity),
      exchange_(sink_, options.exchange),
      commit_part_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(options.commit_part).count()) {
  for (const Instrument& instrument : options.instruments) {
    if (!exchange_.add_instrument(instrument)) {
      throw std::invalid_argument("instrument " + std::to_string(instrument.id) + ": duplicate id or invalid band");
    }
  }
  if (options.store) {
    store_ = std::make_unique<PartitionStore>(*options.store, partition_, options.instruments, options.exchange);
    recovery_ = store_->recover(exchange_);
  }
  sink_.log.start_at(exchange_.next_sequence());
  capture_durable_state();
  memory_summary_ = describe_pool(exchange_.memory().orders, options.exchange.hugepages);
  thread_ = std::thread([this] { loop(); });
  if (cpu_ >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu_, &set);
    if (pthread_setaffinity_np(thread_.native_handle(), sizeof set, &set) == 0) pinned_cpu_ = cpu_;
  }
}

PartitionWorker::~PartitionWorker() { stop(); }

bool PartitionWorker::running() const {
  std::lock_guard lock(mutex_);
  return !stopping_;
}

void PartitionWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool PartitionWorker::run(const std::function<void()>& work, bool reads_journal) {
  bool done = false;
  std::unique_lock lock(mutex_);
  if (stopping_) return false;
  queue_.push_back(Task{&work, &done, nullptr, reads_journal});
  work_ready_.notify_one();
  work_done_.wait(lock, [&done] { return done; });
  return true;
}

void PartitionWorker::loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and everything queued was done
      taken_.swap(queue_);
    }
    part_started_ns_ = unix_now_ns();
    finished_ = 0;
    answered_ = 0;
    while (finished_ < taken_.size()) {
      (*taken_[finished_].work)();
      ++finished_;
      if (finished_ < taken_.size() && part_due()) commit_part();
    }
    commit_pass();
    answer_finished(unix_now_ns());
    taken_.clear();
  }
  // A snapshot's child dies with the thread that forked it (PR_SET_PDEATHSIG): this one
  // waits for it before it ends.
  if (store_) store_->finish_snapshot();
}

// One write and (policy permitting) one fdatasync for every batch applied since the
// last: none of them is answered before this returns.
void PartitionWorker::commit_journal() {
  if (!batches_pending_) return;
  batches_pending_ = false;
  if (store_) {
    try {
      store_->commit();
    } catch (const std::exception& error) {
      journal_failed(partition_, error);
    }
  }
  capture_durable_state();
}

void PartitionWorker::commit_pass() {
  const bool applied = batches_pending_;
  commit_journal();
  if (!applied || !store_) return;
  try {
    store_->maybe_snapshot(exchange_);
  } catch (const std::exception& error) {
    journal_failed(partition_, error);
  }
}

bool PartitionWorker::part_due() const {
  return commit_part_ns_ > 0 && unix_now_ns() - part_started_ns_ >= commit_part_ns_;
}

// Mid-pass: commits what is applied, answers the tasks finished, and serves the reads
// of the journal queued meanwhile (they would otherwise wait for the whole pass).
void PartitionWorker::commit_part() {
  commit_journal();
  std::vector<Task> reads;
  {
    std::lock_guard lock(mutex_);
    for (auto task = queue_.begin(); task != queue_.end();) {
      if (task->reads_journal) {
        reads.push_back(*task);
        task = queue_.erase(task);
      } else {
        ++task;
      }
    }
  }
  for (const Task& read : reads) (*read.work)();
  {
    std::lock_guard lock(mutex_);
    for (const Task& read : reads) *read.done = true;
  }
  answer_finished(unix_now_ns());
  part_started_ns_ = unix_now_ns();
}

// Marks the pass's finished tasks done (their batches are journaled by now) and wakes
// every waiter: those tasks, and the followers waiting for the journal to grow.
void PartitionWorker::answer_finished(std::int64_t journaled_ns) {
  {
    std::lock_guard lock(mutex_);
    for (; answered_ < finished_; ++answered_) {
      const Task& task = taken_[answered_];
      if (task.journaled_ns != nullptr) *task.journaled_ns = journaled_ns;
      *task.done = true;
    }
  }
  work_done_.notify_all();
}

void PartitionWorker::capture_durable_state() {
  durable_next_sequence_ = exchange_.next_sequence();
  durable_commands_ = exchange_.commands_applied();
}

bool PartitionWorker::apply(const std::vector<Command>& commands, std::vector<Event>& out,
                            std::uint64_t& next_sequence) {
  Batch batch;
  batch.commands = &commands;
  batch.out = &out;
  if (!post(batch)) return false;
  finish(batch);
  next_sequence = batch.next_sequence;
  return true;
}

bool PartitionWorker::post(Batch& batch) {
  batch.done = false;
  batch.gaps.clear();
  if (batch.work_ref == nullptr) {
    batch.work = [this, &batch] { apply_on_thread(batch); };
    batch.work_ref = &batch.work;
  }
  std::lock_guard lock(mutex_);
  if (stopping_) return false;
  queue_.push_back(Task{batch.work_ref, &batch.done, &batch.journaled_ns});
  work_ready_.notify_one();
  return true;
}

void PartitionWorker::finish(Batch& batch) {
  {
    std::unique_lock lock(mutex_);
    work_done_.wait(lock, [&batch] { return batch.done; });
  }
  // Resent commands older than memory: their events are rebuilt from the journal here,
  // off the matching thread. Filled back to front so earlier positions stay valid.
  std::vector<Event>& out = *batch.out;
  for (auto gap = batch.gaps.rbegin(); gap != batch.gaps.rend(); ++gap) {
    std::vector<Event> rebuilt;
    history(gap->events.first, gap->events.first + gap->events.count, [&rebuilt](const Event& event) {
      rebuilt.push_back(event);
      return true;
    });
    out.insert(out.begin() + static_cast<std::ptrdiff_t>(gap->position), rebuilt.begin(), rebuilt.end());
  }
}

void PartitionWorker::apply_on_thread(Batch& batch) {
  // One clock per batch (per part of it): it is journaled with the batch, so a replay
  // stamps the same.
  std::int64_t now = unix_now_ns();
  batch.match_start_ns = now;
  std::vector<Event>& out = *batch.out;
  if (store_) store_->begin_batch(exchange_.commands_applied(), now);
  sink_.batch = &out;
  const std::vector<Command>& commands = *batch.commands;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    const Command& command = commands[i];
    if (i + 1 < commands.size()) exchange_.prefetch(commands[i + 1]);
    if (i % kCommandsBetweenClockReads == 0 && i > 0 && part_due()) {
      // The commands so far are a journal batch of their own, with their own clock.
      if (store_) store_->end_batch();
      batches_pending_ = true;
      commit_part();
      now = unix_now_ns();
      if (store_) store_->begin_batch(exchange_.commands_applied(), now);
    }
    EventRange original;
    if (exchange_.apply(command, now, &original) == ApplyResult::Applied) {
      if (store_) store_->add(command);
    } else if (original.count > 0) {
      const std::size_t before = out.size();
      if (!sink_.log.read(original.first, original.count, out)) batch.gaps.push_back(Batch::Gap{before, original});
    }
  }
  sink_.batch = nullptr;
  if (store_) store_->end_batch();
  batches_pending_ = true;
  batch.next_sequence = exchange_.next_sequence();
  batch.matched_ns = unix_now_ns();
}

bool PartitionWorker::read_events(std::uint64_t from, std::size_t max, std::vector<Event>& out,
                                  std::uint64_t& next_sequence, bool& evicted, std::uint64_t& first_retained) {
  return run(
      [&] {
        evicted = !sink_.log.read(from, max, out, durable_next_sequence_.load());
        first_retained = sink_.log.first_sequence();
        next_sequence = durable_next_sequence_;
      },
      /*reads_journal=*/true);
}

bool PartitionWorker::wait_journaled(std::uint64_t from, std::chrono::milliseconds timeout) {
  // loop() notifies work_done_ after every pass, the pass's journal commit before it.
  std::unique_lock lock(mutex_);
  return work_done_.wait_for(lock, timeout, [&] { return stopping_ || durable_next_sequence_.load() > from; }) &&
         !stopping_;
}

bool PartitionWorker::persisted(std::uint64_t through, std::optional<std::size_t>& deleted) {
  std::uint64_t persisted_through = 0;
  if (!run([&] {
        // Never past what is journaled: a client's mistake must not cost the journal more.
        persisted_through_ = std::max(persisted_through_, std::min(through, durable_next_sequence_.load() - 1));
        if (store_) store_->poll_snapshot();  // an idle partition's child is reaped here
        persisted_through = persisted_through_;
      })) {
    return false;
  }
  deleted = 0;
  if (store_) deleted = pruner_.prune(persisted_through, kPruneAnsweredWithin);
  return true;
}

std::size_t PartitionWorker::prune(std::uint64_t persisted_through) {
  try {
    const PruneReport report = store_->prune(persisted_through);
    for (const std::string& path : report.deleted) {
      std::fprintf(stderr, "venue-engine partition %u: pruned %s (events through %llu are in Postgres)\n",
                   partition_, path.c_str(), static_cast<unsigned long long>(persisted_through));
    }
    return report.deleted.size();
  } catch (const std::exception& error) {  // the files stay; the next prune tries again
    std::fprintf(stderr, "venue-engine partition %u: pruning failed: %s\n", partition_, error.what());
    return 0;
  }
}

bool PartitionWorker::history(std::uint64_t from, std::uint64_t until,
                              const std::function<bool(const Event&)>& visit) const {
  return store_ != nullptr && store_->history(from, until, durable_commands_.load(), visit);
}

bool PartitionWorker::book(InstrumentId instrument_id, std::size_t depth, BookView& out, bool& found) {
  return run([&] {
    const OrderBook* book = exchange_.book(instrument_id);
    found = book != nullptr;
    out.sequence = exchange_.next_sequence() - 1;
    if (!found) return;
    book->for_each_level(Side::Buy, depth, [&out](const PriceLevel& level) {
      out.bids.push_back(BookLevelView{level.price, level.quantity, level.order_count});
    });
    book->for_each_level(Side::Sell, depth, [&out](const PriceLevel& level) {
      out.asks.push_back(BookLevelView{level.price, level.quantity, level.order_count});
    });
  });
}

bool PartitionWorker::order(OrderId order_id, OrderView& out) {
  return run([&] {
    out.sequence = exchange_.next_sequence() - 1;
    if (const Order* live = exchange_.live_order(order_id)) {
      out.known = OrderKnown::Live;
      out.state = state_of(*live);
    } else if (const DoneOrder* done = exchange_.done_order(order_id)) {
      out.known = OrderKnown::Done;
      out.state = state_of(done->order());
      out.state.order_status = done->status;
    }
  });
}

bool PartitionWorker::health(HealthView& out) {
  return run([&] {
    out.next_sequence = exchange_.next_sequence();
    out.commands_applied = exchange_.commands_applied();
    out.duplicates = exchange_.duplicates();
    exchange_.shard_marks().for_each(
        [&out](std::uint32_t shard, const StreamId& mark) { out.shard_marks.emplace_back(shard, mark); });
  });
}

}  // namespace venue
