// Commands into the engine, in its own types. Strings are views into the caller's
// input (the decoded request), valid while the command is applied.
#pragma once

#include <cstdint>
#include <string_view>

#include "book/types.h"

namespace venue {

// Where a command came from: its shard's Redis stream id "ms-seq", and its place among
// the commands of that stream entry (one entry holds one request's commands). 0-0
// (which Redis never assigns) marks a command from outside any stream: it is never
// deduplicated.
struct CommandOrigin {
  std::uint32_t shard = 0;
  std::uint64_t stream_ms = 0;
  std::uint64_t stream_seq = 0;
  std::uint32_t entry_index = 0;

  bool from_stream() const { return stream_ms != 0 || stream_seq != 0; }
};

struct NewOrder {
  OrderId order_id = 0;
  std::string_view client_order_id;
  AccountId account_id = 0;
  InstrumentId instrument_id = 0;
  Side side = Side::Unspecified;
  OrderType type = OrderType::Unspecified;
  TimeInForce time_in_force = TimeInForce::Unspecified;
  Price price = 0;  // 0 for a market order
  Quantity quantity = 0;
  bool post_only = false;
};

struct CancelOrder {
  OrderId order_id = 0;
  AccountId account_id = 0;
  InstrumentId instrument_id = 0;
};

// quantity is the new total order quantity (FIX OrderQty), not the remainder.
struct ReplaceOrder {
  OrderId order_id = 0;
  AccountId account_id = 0;
  InstrumentId instrument_id = 0;
  Price price = 0;
  Quantity quantity = 0;
};

// The end of a trading session: every resting DAY order of the instrument (0: of every
// instrument of the partition) expires. A command like any other, so it is journaled,
// sequenced and replayed in its place.
struct ExpireDay {
  InstrumentId instrument_id = 0;
};

enum class CommandType : std::uint8_t { Unknown, New, Cancel, Replace, ExpireDay };

struct Command {
  CommandOrigin origin;
  CommandType type = CommandType::Unknown;  // Unknown: no body; rejected UNSUPPORTED
  union {
    NewOrder new_order;
    CancelOrder cancel;
    ReplaceOrder replace;
    ExpireDay expire_day;
  };

  Command() : new_order{} {}

  static Command make(const CommandOrigin& origin, const NewOrder& body) {
    Command command;
    command.origin = origin;
    command.type = CommandType::New;
    command.new_order = body;
    return command;
  }
  static Command make(const CommandOrigin& origin, const CancelOrder& body) {
    Command command;
    command.origin = origin;
    command.type = CommandType::Cancel;
    command.cancel = body;
    return command;
  }
  static Command make(const CommandOrigin& origin, const ReplaceOrder& body) {
    Command command;
    command.origin = origin;
    command.type = CommandType::Replace;
    command.replace = body;
    return command;
  }
  static Command make(const CommandOrigin& origin, const ExpireDay& body) {
    Command command;
    command.origin = origin;
    command.type = CommandType::ExpireDay;
    command.expire_day = body;
    return command;
  }
};

}  // namespace venue
