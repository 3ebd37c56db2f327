// Test support: every field of an event as one line, so two event streams compare
// with EXPECT_EQ and a difference reads as text.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "book/event.h"

namespace venue::testing {

inline std::string event_text(const Event& event, bool with_timestamp = true) {
  std::ostringstream out;
  out << "#" << event.sequence;
  if (with_timestamp) out << " @" << event.timestamp_ns;
  switch (event.type) {
    case EventType::Report: {
      const ExecutionReport& r = event.report;
      out << " report order=" << r.order_id << " coid=" << r.client_order_id.view() << " acct=" << r.account_id
          << " instr=" << r.instrument_id << " side=" << int(r.side) << " type=" << int(r.type)
          << " tif=" << int(r.time_in_force) << " post=" << r.post_only << " exec=" << int(r.exec_type)
          << " status=" << int(r.order_status) << " reason=" << int(r.reject_reason) << " px=" << r.price
          << " qty=" << r.quantity << " last=" << r.last_qty << "@" << r.last_px << " cum=" << r.cum_qty
          << " leaves=" << r.leaves_qty << " notional=" << r.cum_notional << " trade=" << r.trade_id
          << " origin=" << r.shard << ":" << r.stream_ms << "-" << r.stream_seq;
      break;
    }
    case EventType::Trade: {
      const Trade& t = event.trade;
      out << " trade id=" << t.trade_id << " instr=" << t.instrument_id << " " << t.quantity << "@" << t.price
          << " buy=" << t.buy_order_id << " sell=" << t.sell_order_id << " aggressor=" << int(t.aggressor_side);
      break;
    }
    case EventType::Level: {
      const LevelUpdate& l = event.level;
      out << " level instr=" << l.instrument_id << " side=" << int(l.side) << " " << l.quantity << "@" << l.price
          << " action=" << int(l.action);
      break;
    }
  }
  return out.str();
}

inline std::vector<std::string> events_text(const std::vector<Event>& events, bool with_timestamp = true) {
  std::vector<std::string> out;
  for (const Event& event : events) out.push_back(event_text(event, with_timestamp));
  return out;
}

}  // namespace venue::testing
