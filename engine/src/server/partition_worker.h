// The partition's matching thread: the only thread that touches the exchange. gRPC
// threads hand it work through a queue and wait for the result (a mutex and condvar
// handoff: simple and correct first; a lock-free ring comes with the optimisation).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "book/command.h"
#include "book/event.h"
#include "book/instrument.h"
#include "matching/exchange.h"
#include "server/event_log.h"

namespace venue {

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

struct HealthView {
  std::uint64_t next_sequence = 0;
  std::uint64_t commands_applied = 0;
  std::uint64_t duplicates = 0;
  std::vector<std::pair<std::uint32_t, StreamId>> shard_marks;
};

class PartitionWorker {
 public:
  // Throws std::invalid_argument for a duplicate instrument id or an invalid band.
  PartitionWorker(std::uint32_t partition, const std::vector<Instrument>& instruments,
                  std::size_t event_log_capacity, const ExchangeOptions& options = {});
  ~PartitionWorker();
  PartitionWorker(const PartitionWorker&) = delete;
  PartitionWorker& operator=(const PartitionWorker&) = delete;

  std::uint32_t partition() const { return partition_; }
  bool running() const;

  // Each call below runs on the matching thread, in the order calls arrive, and
  // returns false once the worker has stopped.

  // Applies the commands in order, appends the events they produced to `out`, and sets
  // `next_sequence` to the partition's next sequence after them.
  bool apply(const std::vector<Command>& commands, std::vector<Event>& out, std::uint64_t& next_sequence);

  // Events from `from` on (at most `max`) into `out`. `evicted` is set when `from` is
  // older than the log holds; `first_retained` then says where it starts.
  bool read_events(std::uint64_t from, std::size_t max, std::vector<Event>& out, std::uint64_t& next_sequence,
                   bool& evicted, std::uint64_t& first_retained);

  // `found` is false for an unknown instrument.
  bool book(InstrumentId instrument_id, std::size_t depth, BookView& out, bool& found);

  bool health(HealthView& out);

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
    bool done = false;
  };

  bool run(const std::function<void()>& work);
  void loop();

  const std::uint32_t partition_;
  Sink sink_;
  Exchange exchange_;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::deque<Task*> queue_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace venue
