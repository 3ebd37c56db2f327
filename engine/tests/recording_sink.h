// Test support: a sink that keeps every event, and short ways to build commands.
#pragma once

#include <string>
#include <vector>

#include "book/command.h"
#include "book/event.h"

namespace venue::testing {

class RecordingSink : public EventSink {
 public:
  void on_event(const Event& event) override { events.push_back(event); }

  // The events recorded since the last take(), and forgets them.
  std::vector<Event> take() {
    std::vector<Event> out;
    out.swap(events);
    return out;
  }

  std::vector<Event> events;
};

// Unless a test names an account, each order has one of its own (1000 + its id), so
// orders trade with each other and self-trade prevention stays out of the way; cancels
// and replaces find the order's account the same way.
inline constexpr AccountId kOwnAccount = 0;
inline AccountId account_of(OrderId id, AccountId account) { return account == kOwnAccount ? 1000 + id : account; }

inline NewOrder limit_order(OrderId id, Side side, Price price, Quantity quantity,
                            TimeInForce tif = TimeInForce::Gtc, AccountId account = kOwnAccount,
                            InstrumentId instrument = 1) {
  NewOrder order;
  order.order_id = id;
  order.client_order_id = "c";
  order.account_id = account_of(id, account);
  order.instrument_id = instrument;
  order.side = side;
  order.type = OrderType::Limit;
  order.time_in_force = tif;
  order.price = price;
  order.quantity = quantity;
  return order;
}

inline NewOrder market_order(OrderId id, Side side, Quantity quantity, AccountId account = kOwnAccount,
                             InstrumentId instrument = 1) {
  NewOrder order = limit_order(id, side, 0, quantity, TimeInForce::Ioc, account, instrument);
  order.type = OrderType::Market;
  return order;
}

inline CancelOrder cancel_order(OrderId id, AccountId account = kOwnAccount, InstrumentId instrument = 1) {
  return CancelOrder{id, account_of(id, account), instrument};
}

inline ReplaceOrder replace_order(OrderId id, Price price, Quantity quantity, AccountId account = kOwnAccount,
                                  InstrumentId instrument = 1) {
  return ReplaceOrder{id, account_of(id, account), instrument, price, quantity};
}

// A compact label per event, so a test can pin the exact order of what came out:
// "NEW 1", "TRADE 2", "CANCELED 3", "REJECTED 4", "trade", "level ADD".
inline std::string label(const Event& event) {
  switch (event.type) {
    case EventType::Trade:
      return "trade";
    case EventType::Level: {
      static const char* actions[] = {"?", "ADD", "CHANGE", "DELETE"};
      return std::string("level ") + actions[static_cast<int>(event.level.action)];
    }
    case EventType::Report: {
      static const char* types[] = {"?",        "NEW",     "TRADE",           "CANCELED",        "REPLACED",
                                    "REJECTED", "EXPIRED", "CANCEL_REJECTED", "REPLACE_REJECTED"};
      return std::string(types[static_cast<int>(event.report.exec_type)]) + " " +
             std::to_string(event.report.order_id);
    }
  }
  return "?";
}

inline std::vector<std::string> labels(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& event : events) out.push_back(label(event));
  return out;
}

}  // namespace venue::testing
