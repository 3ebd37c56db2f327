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
#include "matching/command_index.h"
#include "matching/shard_marks.h"

namespace venue {

struct ExchangeOptions {
  std::size_t order_capacity = 1 << 16;  // live orders before the pool grows
  std::size_t level_capacity = 1 << 12;  // price levels before the pool grows
  StpMode stp_mode = StpMode::CancelNewest;
  std::size_t command_index_per_shard = 1 << 16;  // recent commands whose events a resend can get again
  HugePages hugepages = HugePages::Try;             // where the order and level pools live
  // Done orders remembered (see book/done_orders.h): a cancel of one is too late, not
  // unknown. 128 bytes each, preallocated; rounded up to a power of two.
  std::size_t done_order_capacity = 1 << 18;
};

enum class ApplyResult : std::uint8_t { Applied, Duplicate };

// What recovery restores besides the books.
struct ExchangeCounters {
  std::uint64_t next_sequence = 1;
  std::uint64_t next_trade_id = 1;
  std::uint64_t commands_applied = 0;
};

class Exchange {
 public:
  explicit Exchange(EventSink& sink, const ExchangeOptions& options = {});
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // False when the id is taken or the band is invalid (see Instrument::valid).
  bool add_instrument(const Instrument& instrument);

  // Applies one command at the engine clock `timestamp_ns`, unless its stream id is at
  // or below its shard's mark: a duplicate, nothing happens and no event is emitted;
  // `original` (when given) is then set to the events the command produced when it was
  // applied, if the command index still holds it (count 0 otherwise).
  ApplyResult apply(const Command& command, std::int64_t timestamp_ns, EventRange* original = nullptr);

  // A hint before apply(command): loads the order id's slot of the live-order map, the
  // one random memory access a command is sure to make. Call it for command i+1 while
  // applying command i; a large book's id map is far bigger than the cache.
  void prefetch(const Command& command) const {
    switch (command.type) {
      case CommandType::New:
        memory_.live_orders.prefetch(command.new_order.order_id);
        break;
      case CommandType::Cancel:
        memory_.live_orders.prefetch(command.cancel.order_id);
        break;
      case CommandType::Replace:
        memory_.live_orders.prefetch(command.replace.order_id);
        break;
      default:
        break;
    }
  }

  const OrderBook* book(InstrumentId id) const { return books_by_id_.find(id); }
  // A live order by id, or a done one the partition remembers; nullptr if neither.
  const Order* live_order(OrderId order_id) const { return memory_.live_orders.find(order_id); }
  const DoneOrder* done_order(OrderId order_id) const { return memory_.done.find(order_id); }
  std::size_t instrument_count() const { return books_.size(); }
  // Books in ascending instrument id: the order session end and snapshots use.
  template <typename F>
  void for_each_book(F&& visit) const {
    for (const auto& book : books_) visit(*book);
  }

  std::uint64_t next_sequence() const { return events_.next_sequence(); }
  std::uint64_t next_trade_id() const { return events_.next_trade_id(); }
  std::uint64_t commands_applied() const { return commands_applied_; }
  std::uint64_t duplicates() const { return duplicates_; }
  const ShardMarks& shard_marks() const { return shard_marks_; }
  const CommandIndex& command_index() const { return command_index_; }
  const BookMemory& memory() const { return memory_; }
  StpMode stp_mode() const { return stp_mode_; }
  // The mode applies from the next command on (recovery replays each journal segment
  // with the mode it was written under).
  void set_stp_mode(StpMode mode);

  // ---- recovery: state as a snapshot saved it; no events ----
  void restore_counters(const ExchangeCounters& counters);
  bool restore_order(const Order& order);
  void restore_done_order(const DoneOrder& order) { memory_.done.restore(order); }
  void restore_shard_mark(std::uint32_t shard, StreamId mark) {
    shard_marks_.advance(CommandOrigin{shard, mark.ms, mark.seq, mark.index});
  }
  void restore_command(std::uint32_t shard, StreamId id, EventRange events) {
    command_index_.record(shard, id, events);
  }

 private:
  BookMemory memory_;  // declared before the books: they hand their orders back to it
  EventStream events_;
  ShardMarks shard_marks_;
  CommandIndex command_index_;
  StpMode stp_mode_;
  std::vector<std::unique_ptr<OrderBook>> books_;  // ascending instrument id
  OpenHashMap<InstrumentId, OrderBook*> books_by_id_;
  std::uint64_t commands_applied_ = 0;
  std::uint64_t duplicates_ = 0;
};

}  // namespace venue
