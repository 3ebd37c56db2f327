#include "server/partition_worker.h"

#include <time.h>

#include <stdexcept>
#include <string>

namespace venue {

namespace {

std::int64_t unix_now_ns() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

}  // namespace

PartitionWorker::PartitionWorker(std::uint32_t partition, const std::vector<Instrument>& instruments,
                                 std::size_t event_log_capacity, const ExchangeOptions& options)
    : partition_(partition), sink_(event_log_capacity), exchange_(sink_, options) {
  for (const Instrument& instrument : instruments) {
    if (!exchange_.add_instrument(instrument)) {
      throw std::invalid_argument("instrument " + std::to_string(instrument.id) + ": duplicate id or invalid band");
    }
  }
  thread_ = std::thread([this] { loop(); });
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

bool PartitionWorker::run(const std::function<void()>& work) {
  Task task{&work};
  std::unique_lock lock(mutex_);
  if (stopping_) return false;
  queue_.push_back(&task);
  work_ready_.notify_one();
  work_done_.wait(lock, [&task] { return task.done; });
  return true;
}

void PartitionWorker::loop() {
  std::deque<Task*> taken;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued was done
      taken.swap(queue_);
    }
    for (Task* task : taken) (*task->work)();
    {
      std::lock_guard lock(mutex_);
      for (Task* task : taken) task->done = true;
    }
    taken.clear();
    work_done_.notify_all();
  }
}

bool PartitionWorker::apply(const std::vector<Command>& commands, std::vector<Event>& out,
                            std::uint64_t& next_sequence) {
  return run([&] {
    sink_.batch = &out;
    for (const Command& command : commands) exchange_.apply(command, unix_now_ns());
    sink_.batch = nullptr;
    next_sequence = exchange_.next_sequence();
  });
}

bool PartitionWorker::read_events(std::uint64_t from, std::size_t max, std::vector<Event>& out,
                                  std::uint64_t& next_sequence, bool& evicted, std::uint64_t& first_retained) {
  return run([&] {
    evicted = !sink_.log.read(from, max, out);
    first_retained = sink_.log.first_sequence();
    next_sequence = exchange_.next_sequence();
  });
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
