#include "matching/shard_marks.h"

namespace venue {

bool ShardMarks::advance(const CommandOrigin& origin) {
  if (!origin.from_stream()) return true;
  const StreamId id{origin.stream_ms, origin.stream_seq, origin.entry_index};
  if (StreamId* mark = by_shard_.find(origin.shard)) {
    if (id <= *mark) return false;
    *mark = id;
    return true;
  }
  marks_.push_back(Entry{origin.shard, id});
  by_shard_.insert(origin.shard, &marks_.back().mark);
  return true;
}

}  // namespace venue
