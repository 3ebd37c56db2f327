// Which events each recent command of a stream produced: (shard, stream id) -> the run
// of sequences it was answered with. A command sent again after a submitter crash is
// not applied twice, but its original events are sent again, and this says which.
// Bounded: a ring per shard of the last `per_shard` commands, allocated when a shard is
// first seen, so recording a command never allocates; older commands are forgotten
// (their reports are long published: the submitter resends only its unacknowledged tail).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "book/open_hash_map.h"
#include "matching/shard_marks.h"

namespace venue {

struct EventRange {
  std::uint64_t first = 0;  // the first event's sequence
  std::uint64_t count = 0;  // how many; 0 when the command produced none
};

class CommandIndex {
 public:
  explicit CommandIndex(std::size_t per_shard = 1 << 16) : per_shard_(per_shard == 0 ? 1 : per_shard) {}

  // Stream ids of one shard arrive increasing (ShardMarks guarantees it).
  void record(std::uint32_t shard, StreamId id, EventRange events) {
    Ring* ring = by_shard_.find(shard);
    if (ring == nullptr) {
      rings_.push_back(Ring{shard, std::vector<Entry>(per_shard_), 0, 0});
      ring = &rings_.back();
      by_shard_.insert(shard, ring);
    }
    ring->entries[(ring->start + ring->size) % per_shard_] = Entry{id, events};
    if (ring->size < per_shard_) {
      ++ring->size;
    } else {
      ring->start = (ring->start + 1) % per_shard_;
    }
  }

  // The events of the shard's command `id`, or false when it is not held (never
  // applied, or forgotten).
  bool find(std::uint32_t shard, StreamId id, EventRange& out) const {
    const Ring* ring = by_shard_.find(shard);
    if (ring == nullptr) return false;
    std::size_t low = 0;
    std::size_t high = ring->size;  // binary search over the ring's logical order
    while (low < high) {
      const std::size_t mid = (low + high) / 2;
      const Entry& entry = ring->at(mid, per_shard_);
      if (entry.id < id) {
        low = mid + 1;
      } else {
        high = mid;
      }
    }
    if (low == ring->size || ring->at(low, per_shard_).id != id) return false;
    out = ring->at(low, per_shard_).events;
    return true;
  }

  std::size_t per_shard() const { return per_shard_; }

  // Visits (shard, id, events) shard by shard, oldest first: what a snapshot saves.
  template <typename F>
  void for_each(F&& visit) const {
    for (const Ring& ring : rings_) {
      for (std::size_t i = 0; i < ring.size; ++i) {
        const Entry& entry = ring.at(i, per_shard_);
        visit(ring.shard, entry.id, entry.events);
      }
    }
  }

 private:
  struct Entry {
    StreamId id;
    EventRange events;
  };
  struct Ring {
    std::uint32_t shard;
    std::vector<Entry> entries;
    std::size_t start;
    std::size_t size;
    const Entry& at(std::size_t i, std::size_t capacity) const { return entries[(start + i) % capacity]; }
  };

  std::size_t per_shard_;
  std::deque<Ring> rings_;  // stable addresses for the index below
  OpenHashMap<std::uint32_t, Ring*> by_shard_;
};

}  // namespace venue
