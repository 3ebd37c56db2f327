// A partition's exchange: its instruments' books, the shard marks that make every
// queued command apply once, and the one sequenced event stream they all write to.
// Commands in, events out through an EventSink; no I/O, no threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "book/book_memory.h"
#include "book/command.h"
#include "book/event.h"
#include "book/event_stream.h"
#include "book/instrument.h"
#include "book/open_hash_map.h"
#include "book/order_book.h"
#include "matching/shard_marks.h"

namespace venue {

struct ExchangeOptions {
  std::size_t order_capacity = 1 << 16;  // live orders before the pool grows
  std::size_t level_capacity = 1 << 12;  // price levels before the pool grows
};

enum class ApplyResult : std::uint8_t { Applied, Duplicate };

class Exchange {
 public:
  explicit Exchange(EventSink& sink, const ExchangeOptions& options = {});
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // False when the id is taken or the band is invalid (see Instrument::valid).
  bool add_instrument(const Instrument& instrument);

  // Applies one command at the engine clock `timestamp_ns`, unless its stream id is at
  // or below its shard's mark (a duplicate: nothing happens, no event).
  ApplyResult apply(const Command& command, std::int64_t timestamp_ns);

  const OrderBook* book(InstrumentId id) const { return books_by_id_.find(id); }
  std::size_t instrument_count() const { return books_.size(); }

  std::uint64_t next_sequence() const { return events_.next_sequence(); }
  std::uint64_t commands_applied() const { return commands_applied_; }
  std::uint64_t duplicates() const { return duplicates_; }
  const ShardMarks& shard_marks() const { return shard_marks_; }

 private:
  BookMemory memory_;  // declared before the books: they hand their orders back to it
  EventStream events_;
  ShardMarks shard_marks_;
  std::vector<std::unique_ptr<OrderBook>> books_;
  OpenHashMap<InstrumentId, OrderBook*> books_by_id_;
  std::uint64_t commands_applied_ = 0;
  std::uint64_t duplicates_ = 0;
};

}  // namespace venue
