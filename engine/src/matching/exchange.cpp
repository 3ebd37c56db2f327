#include "matching/exchange.h"

#include <algorithm>

namespace venue {

namespace {

StreamId stream_id(const CommandOrigin& origin) { return StreamId{origin.stream_ms, origin.stream_seq, origin.entry_index}; }

}  // namespace

Exchange::Exchange(EventSink& sink, const ExchangeOptions& options)
    : memory_(options.order_capacity, options.level_capacity, options.hugepages, options.done_order_capacity),
      events_(sink),
      command_index_(options.command_index_per_shard),
      stp_mode_(options.stp_mode) {}

bool Exchange::add_instrument(const Instrument& instrument) {
  if (!instrument.valid() || books_by_id_.find(instrument.id) != nullptr) return false;
  auto book = std::make_unique<OrderBook>(instrument, memory_, events_, stp_mode_);
  books_by_id_.insert(instrument.id, book.get());
  const auto at = std::upper_bound(books_.begin(), books_.end(), instrument.id,
                                   [](InstrumentId id, const auto& other) { return id < other->instrument().id; });
  books_.insert(at, std::move(book));
  return true;
}

void Exchange::set_stp_mode(StpMode mode) {
  stp_mode_ = mode;
  for (auto& book : books_) book->set_stp_mode(mode);
}

ApplyResult Exchange::apply(const Command& command, std::int64_t timestamp_ns, EventRange* original) {
  if (!shard_marks_.advance(command.origin)) {
    ++duplicates_;
    if (original != nullptr) {
      *original = EventRange{};
      command_index_.find(command.origin.shard, stream_id(command.origin), *original);
    }
    return ApplyResult::Duplicate;
  }
  ++commands_applied_;
  const std::uint64_t first_sequence = events_.next_sequence();
  events_.begin_command(command.origin, timestamp_ns);
  switch (command.type) {
    case CommandType::New: {
      const NewOrder& order = command.new_order;
      if (OrderBook* book = books_by_id_.find(order.instrument_id)) {
        book->new_order(order);
      } else {
        events_.reject_new_order(order, RejectReason::UnknownInstrument);
      }
      break;
    }
    case CommandType::Cancel: {
      const CancelOrder& cancel = command.cancel;
      if (OrderBook* book = books_by_id_.find(cancel.instrument_id)) {
        book->cancel(cancel);
      } else {
        events_.reject_unknown_order(ExecType::CancelRejected, cancel.order_id, cancel.account_id,
                                     cancel.instrument_id, RejectReason::UnknownInstrument);
      }
      break;
    }
    case CommandType::Replace: {
      const ReplaceOrder& replace = command.replace;
      if (OrderBook* book = books_by_id_.find(replace.instrument_id)) {
        book->replace(replace);
      } else {
        events_.reject_unknown_order(ExecType::ReplaceRejected, replace.order_id, replace.account_id,
                                     replace.instrument_id, RejectReason::UnknownInstrument);
      }
      break;
    }
    case CommandType::ExpireDay: {
      const InstrumentId id = command.expire_day.instrument_id;
      if (id == 0) {
        for (auto& book : books_) book->expire_day();
      } else if (OrderBook* book = books_by_id_.find(id)) {
        book->expire_day();
      } else {
        events_.reject_unknown_order(ExecType::Rejected, 0, 0, id, RejectReason::UnknownInstrument);
      }
      break;
    }
    case CommandType::Unknown:
      // No body: still answered, so the command's stream id is accounted for.
      events_.reject_unknown_order(ExecType::Rejected, 0, 0, 0, RejectReason::Unsupported);
      break;
  }
  if (command.origin.from_stream()) {
    command_index_.record(command.origin.shard, stream_id(command.origin),
                          EventRange{first_sequence, events_.next_sequence() - first_sequence});
  }
  return ApplyResult::Applied;
}

void Exchange::restore_counters(const ExchangeCounters& counters) {
  events_.restore(counters.next_sequence, counters.next_trade_id);
  commands_applied_ = counters.commands_applied;
}

bool Exchange::restore_order(const Order& order) {
  OrderBook* book = books_by_id_.find(order.instrument_id);
  return book != nullptr && book->restore(order);
}

}  // namespace venue
