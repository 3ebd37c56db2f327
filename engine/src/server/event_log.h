// The partition's recent events, in memory, for Replay (gap fill after a reconnect).
// Bounded: a ring of the last `capacity` events; older ones are rebuilt from the
// journal (see PartitionStore::history).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "book/event.h"

namespace venue {

class EventLog {
 public:
  explicit EventLog(std::size_t capacity);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Events arrive in sequence order without gaps.
  void append(const Event& event);
  // While empty: the log starts at `next_sequence` (after recovery from a snapshot).
  void start_at(std::uint64_t next_sequence) {
    if (ring_.empty()) start_ = next_ = next_sequence;
  }

  std::size_t capacity() const { return capacity_; }
  // The oldest sequence still held (== next_sequence() when empty).
  std::uint64_t first_sequence() const { return next_ - size(); }
  std::uint64_t next_sequence() const { return next_; }

  // Appends up to `max` events from sequence `from` on, and before `limit`, to `out`.
  // False when `from` is older than the oldest event held (it was evicted).
  bool read(std::uint64_t from, std::size_t max, std::vector<Event>& out, std::uint64_t limit = UINT64_MAX) const;

 private:
  std::size_t size() const { return ring_.size(); }
  std::size_t slot(std::uint64_t sequence) const { return static_cast<std::size_t>((sequence - start_) % capacity_); }

  std::size_t capacity_;
  std::vector<Event> ring_;  // reserved, not filled, up front: memory is used as events come
  std::uint64_t start_ = 1;  // the first sequence ever appended
  std::uint64_t next_ = 1;   // the sequence after the last appended
  void* unforked_ = nullptr;  // the ring's pages advised out of a fork's child
  std::size_t unforked_bytes_ = 0;
};

}  // namespace venue
