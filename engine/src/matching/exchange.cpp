#include "matching/exchange.h"

namespace venue {

Exchange::Exchange(EventSink& sink, const ExchangeOptions& options)
    : memory_(options.order_capacity, options.level_capacity), events_(sink) {}

bool Exchange::add_instrument(const Instrument& instrument) {
  if (!instrument.valid() || books_by_id_.find(instrument.id) != nullptr) return false;
  books_.push_back(std::make_unique<OrderBook>(instrument, memory_, events_));
  books_by_id_.insert(instrument.id, books_.back().get());
  return true;
}

ApplyResult Exchange::apply(const Command& command, std::int64_t timestamp_ns) {
  if (!shard_marks_.advance(command.origin)) {
    ++duplicates_;
    return ApplyResult::Duplicate;
  }
  ++commands_applied_;
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
        events_.reject_request(cancel.order_id, cancel.account_id, cancel.instrument_id,
                               RejectReason::UnknownInstrument, nullptr);
      }
      break;
    }
    case CommandType::Replace: {
      const ReplaceOrder& replace = command.replace;
      if (OrderBook* book = books_by_id_.find(replace.instrument_id)) {
        book->replace(replace);
      } else {
        events_.reject_request(replace.order_id, replace.account_id, replace.instrument_id,
                               RejectReason::UnknownInstrument, nullptr);
      }
      break;
    }
    case CommandType::Unknown:
      // No body: still answered, so the command's stream id is accounted for.
      events_.reject_request(0, 0, 0, RejectReason::Unsupported, nullptr);
      break;
  }
  return ApplyResult::Applied;
}

}  // namespace venue
