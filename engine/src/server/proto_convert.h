// The one translation between the wire (engine.proto) and the engine's own types.
#pragma once

#include "book/command.h"
#include "book/event.h"
#include "engine.pb.h"

namespace venue {

namespace pb = ::tradingvenue::engine::v1;

// A command viewing `in` (client_order_id points into it): keep `in` alive while it is
// applied. Enum values the engine does not know become Unspecified, so they are
// rejected rather than mistaken for another value.
Command command_from_proto(const pb::Command& in);

void event_to_proto(const Event& in, pb::Event& out);
void report_to_proto(const ExecutionReport& in, pb::ExecutionReport& out);

}  // namespace venue
