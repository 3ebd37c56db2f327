// The partition's output: numbers every event (sequence from 1, no gaps), stamps the
// applied command's clock and origin, assigns trade ids, and is the one place that
// builds execution reports. No I/O: it hands each event to an EventSink.
#pragma once

#include <cstdint>

#include "book/command.h"
#include "book/event.h"
#include "book/order.h"

namespace venue {

// An order's state as a report states it (no exec type): for queries, not the stream.
ExecutionReport state_of(const Order& order);

class EventStream {
 public:
  explicit EventStream(EventSink& sink, std::uint64_t next_sequence = 1, std::uint64_t next_trade_id = 1)
      : sink_(&sink), next_sequence_(next_sequence), next_trade_id_(next_trade_id) {}

  // Called before each command: every event it causes carries this origin and time.
  void begin_command(const CommandOrigin& origin, std::int64_t timestamp_ns) {
    origin_ = origin;
    timestamp_ns_ = timestamp_ns;
  }

  std::uint64_t next_sequence() const { return next_sequence_; }
  std::uint64_t next_trade_id() const { return next_trade_id_; }
  std::uint64_t take_trade_id() { return next_trade_id_++; }
  // Recovery: carries on where a snapshot left off.
  void restore(std::uint64_t next_sequence, std::uint64_t next_trade_id) {
    next_sequence_ = next_sequence;
    next_trade_id_ = next_trade_id;
  }

  // A report of the order's state after an event.
  void report(const Order& order, ExecType exec_type, OrderStatus status, RejectReason reason = RejectReason::None,
              Quantity last_qty = 0, Price last_px = 0, std::uint64_t trade_id = 0);

  // A new order refused before it became an order: nothing of it remains.
  void reject_new_order(const NewOrder& command, RejectReason reason);

  // A cancel or replace (exec_type CancelRejected or ReplaceRejected) of an order the
  // account does not have: status Rejected, as FIX's OrderCancelReject states it.
  // (A refused change of a known order is report() of that order, unchanged.)
  void reject_unknown_order(ExecType exec_type, OrderId order_id, AccountId account_id, InstrumentId instrument_id,
                            RejectReason reason);

  void trade(const Trade& trade);
  void level(const LevelUpdate& update);

 private:
  void emit(Event& event) {
    event.sequence = next_sequence_++;
    event.timestamp_ns = timestamp_ns_;
    sink_->on_event(event);
  }
  void stamp_origin(ExecutionReport& report) const {
    report.shard = origin_.shard;
    report.stream_ms = origin_.stream_ms;
    report.stream_seq = origin_.stream_seq;
  }

  EventSink* sink_;
  std::uint64_t next_sequence_;
  std::uint64_t next_trade_id_;
  CommandOrigin origin_;
  std::int64_t timestamp_ns_ = 0;
};

}  // namespace venue
