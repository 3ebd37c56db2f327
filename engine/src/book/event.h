// Events out of the engine, in its own types, and the sink they are handed to.
// Plain, fixed-size values: a sink may copy them into a log without allocating.
#pragma once

#include <cstdint>

#include "book/order.h"
#include "book/types.h"

namespace venue {

struct ExecutionReport {
  OrderId order_id = 0;
  ClientOrderId client_order_id;
  AccountId account_id = 0;
  InstrumentId instrument_id = 0;
  Side side = Side::Unspecified;
  OrderType type = OrderType::Unspecified;
  TimeInForce time_in_force = TimeInForce::Unspecified;
  bool post_only = false;
  ExecType exec_type = ExecType::Unspecified;
  OrderStatus order_status = OrderStatus::Unspecified;
  RejectReason reject_reason = RejectReason::None;
  Price price = 0;        // the order's limit price after this event
  Quantity quantity = 0;  // the order's total quantity after this event
  Quantity last_qty = 0;
  Price last_px = 0;
  Quantity cum_qty = 0;
  Quantity leaves_qty = 0;
  std::int64_t cum_notional = 0;
  std::uint64_t trade_id = 0;
  // The command this report answers.
  std::uint32_t shard = 0;
  std::uint64_t stream_ms = 0;
  std::uint64_t stream_seq = 0;
};

struct Trade {
  std::uint64_t trade_id = 0;
  InstrumentId instrument_id = 0;
  Price price = 0;  // the resting order's price
  Quantity quantity = 0;
  OrderId buy_order_id = 0;
  OrderId sell_order_id = 0;
  Side aggressor_side = Side::Unspecified;
};

enum class LevelAction : std::uint8_t { Unspecified = 0, Add = 1, Change = 2, Delete = 3 };

struct LevelUpdate {
  InstrumentId instrument_id = 0;
  Side side = Side::Unspecified;
  Price price = 0;
  Quantity quantity = 0;  // total resting at the level after the update; 0 on Delete
  LevelAction action = LevelAction::Unspecified;
};

enum class EventType : std::uint8_t { Report, Trade, Level };

struct Event {
  std::uint64_t sequence = 0;  // per partition, from 1, no gaps
  std::int64_t timestamp_ns = 0;
  EventType type = EventType::Report;
  union {
    ExecutionReport report;
    Trade trade;
    LevelUpdate level;
  };

  Event() : report{} {}
};

// Receives every event in sequence order, on the matching thread.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_event(const Event& event) = 0;
};

}  // namespace venue
