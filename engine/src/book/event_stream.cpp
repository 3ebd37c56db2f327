#include "book/event_stream.h"

namespace venue {

namespace {

void copy_order(ExecutionReport& report, const Order& order) {
  report.order_id = order.id;
  report.client_order_id = order.client_order_id;
  report.account_id = order.account_id;
  report.instrument_id = order.instrument_id;
  report.side = order.side;
  report.type = order.type;
  report.time_in_force = order.time_in_force;
  report.post_only = order.post_only;
  report.price = order.price;
  report.quantity = order.quantity;
  report.cum_qty = order.cum_qty;
  report.leaves_qty = order.leaves_qty;
  report.cum_notional = order.cum_notional;
}

}  // namespace

ExecutionReport state_of(const Order& order) {
  ExecutionReport report;
  copy_order(report, order);
  report.order_status = order.status();
  return report;
}

void EventStream::report(const Order& order, ExecType exec_type, OrderStatus status, RejectReason reason,
                         Quantity last_qty, Price last_px, std::uint64_t trade_id) {
  Event event;
  event.type = EventType::Report;
  ExecutionReport& report = event.report;
  copy_order(report, order);
  report.exec_type = exec_type;
  report.order_status = status;
  report.reject_reason = reason;
  report.last_qty = last_qty;
  report.last_px = last_px;
  report.trade_id = trade_id;
  stamp_origin(report);
  emit(event);
}

void EventStream::reject_new_order(const NewOrder& command, RejectReason reason) {
  Event event;
  event.type = EventType::Report;
  ExecutionReport& report = event.report;
  report.order_id = command.order_id;
  report.client_order_id.assign(command.client_order_id);
  report.account_id = command.account_id;
  report.instrument_id = command.instrument_id;
  report.side = command.side;
  report.type = command.type;
  report.time_in_force = command.time_in_force;
  report.post_only = command.post_only;
  report.price = command.price;
  report.quantity = command.quantity;
  report.exec_type = ExecType::Rejected;
  report.order_status = OrderStatus::Rejected;
  report.reject_reason = reason;
  stamp_origin(report);
  emit(event);
}

void EventStream::reject_unknown_order(ExecType exec_type, OrderId order_id, AccountId account_id,
                                       InstrumentId instrument_id, RejectReason reason) {
  Event event;
  event.type = EventType::Report;
  ExecutionReport& report = event.report;
  report.order_id = order_id;
  report.account_id = account_id;
  report.instrument_id = instrument_id;
  report.exec_type = exec_type;
  report.order_status = OrderStatus::Rejected;
  report.reject_reason = reason;
  stamp_origin(report);
  emit(event);
}

void EventStream::trade(const Trade& trade) {
  Event event;
  event.type = EventType::Trade;
  event.trade = trade;
  emit(event);
}

void EventStream::level(const LevelUpdate& update) {
  Event event;
  event.type = EventType::Level;
  event.level = update;
  emit(event);
}

}  // namespace venue
