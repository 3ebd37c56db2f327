// Per-shard high-water marks of applied stream ids: how the engine applies each queued
// command exactly once when a submitter dies before XACK and another replays the tail.
#pragma once

#include <compare>
#include <cstdint>
#include <deque>

#include "book/command.h"
#include "book/open_hash_map.h"

namespace venue {

// A command's place in its shard: stream id, then index within the entry. Compared in
// that order, so every command of a shard has its own id and they rise in stream order.
struct StreamId {
  std::uint64_t ms = 0;
  std::uint64_t seq = 0;
  std::uint32_t index = 0;
  auto operator<=>(const StreamId&) const = default;
};

class ShardMarks {
 public:
  // Records the command's stream id and returns true when it is above its shard's
  // mark; returns false (a duplicate, mark unchanged) when at or below it. Commands
  // from outside any stream (0-0) are always new and leave the marks alone.
  bool advance(const CommandOrigin& origin);

  // The shard's mark, or null when nothing of the shard was applied.
  const StreamId* mark(std::uint32_t shard) const { return by_shard_.find(shard); }
  std::size_t size() const { return marks_.size(); }

  // Visits (shard, mark) in the order shards were first seen.
  template <typename F>
  void for_each(F&& visit) const {
    for (const Entry& entry : marks_) visit(entry.shard, entry.mark);
  }

 private:
  struct Entry {
    std::uint32_t shard;
    StreamId mark;
  };
  std::deque<Entry> marks_;  // stable addresses for the index below
  OpenHashMap<std::uint32_t, StreamId*> by_shard_;
};

}  // namespace venue
