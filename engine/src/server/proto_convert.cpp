#include "server/proto_convert.h"

namespace venue {

namespace {

// The engine's enums copy the proto's values; the compiler keeps the two in step.
static_assert(static_cast<int>(Side::Sell) == pb::SIDE_SELL && static_cast<int>(Side::Buy) == pb::SIDE_BUY);
static_assert(static_cast<int>(OrderType::Market) == pb::ORDER_TYPE_MARKET);
static_assert(static_cast<int>(TimeInForce::Ioc) == pb::TIME_IN_FORCE_IOC &&
              static_cast<int>(TimeInForce::Fok) == pb::TIME_IN_FORCE_FOK &&
              static_cast<int>(TimeInForce::Day) == pb::TIME_IN_FORCE_DAY);
static_assert(static_cast<int>(ExecType::Replaced) == pb::EXEC_TYPE_REPLACED &&
              static_cast<int>(ExecType::Expired) == pb::EXEC_TYPE_EXPIRED &&
              static_cast<int>(ExecType::CancelRejected) == pb::EXEC_TYPE_CANCEL_REJECTED &&
              static_cast<int>(ExecType::ReplaceRejected) == pb::EXEC_TYPE_REPLACE_REJECTED);
static_assert(static_cast<int>(OrderStatus::PartiallyFilled) == pb::ORDER_STATUS_PARTIALLY_FILLED &&
              static_cast<int>(OrderStatus::Expired) == pb::ORDER_STATUS_EXPIRED);
static_assert(static_cast<int>(RejectReason::FokNotFillable) == pb::REJECT_REASON_FOK_NOT_FILLABLE &&
              static_cast<int>(RejectReason::NoLiquidity) == pb::REJECT_REASON_NO_LIQUIDITY &&
              static_cast<int>(RejectReason::SelfTrade) == pb::REJECT_REASON_SELF_TRADE &&
              static_cast<int>(RejectReason::TooLateToCancel) == pb::REJECT_REASON_TOO_LATE_TO_CANCEL);
static_assert(static_cast<int>(LevelAction::Delete) == pb::LevelUpdate::ACTION_DELETE);

Side side_from(int value) {
  return value == pb::SIDE_BUY || value == pb::SIDE_SELL ? static_cast<Side>(value) : Side::Unspecified;
}

OrderType type_from(int value) {
  return value == pb::ORDER_TYPE_LIMIT || value == pb::ORDER_TYPE_MARKET ? static_cast<OrderType>(value)
                                                                         : OrderType::Unspecified;
}

TimeInForce tif_from(int value) {
  return value >= pb::TIME_IN_FORCE_GTC && value <= pb::TIME_IN_FORCE_DAY ? static_cast<TimeInForce>(value)
                                                                           : TimeInForce::Unspecified;
}

// The engine's enums share the proto's values (see book/types.h), so out is a cast.
template <typename ProtoEnum, typename EngineEnum>
ProtoEnum to_proto(EngineEnum value) {
  return static_cast<ProtoEnum>(static_cast<int>(value));
}

}  // namespace

Command command_from_proto(const pb::Command& in) {
  const CommandOrigin origin{in.shard(), in.stream_ms(), in.stream_seq(), in.entry_index()};
  switch (in.body_case()) {
    case pb::Command::kNewOrder: {
      const pb::NewOrder& order = in.new_order();
      NewOrder out;
      out.order_id = order.order_id();
      out.client_order_id = order.client_order_id();
      out.account_id = order.account_id();
      out.instrument_id = order.instrument_id();
      out.side = side_from(order.side());
      out.type = type_from(order.type());
      out.time_in_force = tif_from(order.time_in_force());
      out.price = order.price();
      out.quantity = order.quantity();
      out.post_only = order.post_only();
      return Command::make(origin, out);
    }
    case pb::Command::kCancel: {
      const pb::CancelOrder& cancel = in.cancel();
      return Command::make(origin, CancelOrder{cancel.order_id(), cancel.account_id(), cancel.instrument_id()});
    }
    case pb::Command::kReplace: {
      const pb::ReplaceOrder& replace = in.replace();
      return Command::make(origin, ReplaceOrder{replace.order_id(), replace.account_id(), replace.instrument_id(),
                                                replace.price(), replace.quantity()});
    }
    case pb::Command::kExpireDay:
      return Command::make(origin, ExpireDay{in.expire_day().instrument_id()});
    case pb::Command::BODY_NOT_SET:
      break;
  }
  Command unknown;
  unknown.origin = origin;
  return unknown;
}

void report_to_proto(const ExecutionReport& r, pb::ExecutionReport& report) {
  report.set_order_id(r.order_id);
  const std::string_view client_order_id = r.client_order_id.view();
  report.set_client_order_id(client_order_id.data(), client_order_id.size());
  report.set_account_id(r.account_id);
  report.set_instrument_id(r.instrument_id);
  report.set_side(to_proto<pb::Side>(r.side));
  report.set_type(to_proto<pb::OrderType>(r.type));
  report.set_time_in_force(to_proto<pb::TimeInForce>(r.time_in_force));
  report.set_price(r.price);
  report.set_quantity(r.quantity);
  report.set_exec_type(to_proto<pb::ExecType>(r.exec_type));
  report.set_order_status(to_proto<pb::OrderStatus>(r.order_status));
  report.set_last_qty(r.last_qty);
  report.set_last_px(r.last_px);
  report.set_cum_qty(r.cum_qty);
  report.set_leaves_qty(r.leaves_qty);
  report.set_cum_notional(r.cum_notional);
  report.set_reject_reason(to_proto<pb::RejectReason>(r.reject_reason));
  report.set_trade_id(r.trade_id);
  report.set_post_only(r.post_only);
  report.set_shard(r.shard);
  report.set_stream_ms(r.stream_ms);
  report.set_stream_seq(r.stream_seq);
}

void event_to_proto(const Event& in, pb::Event& out) {
  out.set_sequence(in.sequence);
  out.set_timestamp_ns(in.timestamp_ns);
  switch (in.type) {
    case EventType::Report:
      report_to_proto(in.report, *out.mutable_report());
      break;
    case EventType::Trade: {
      const Trade& t = in.trade;
      pb::Trade& trade = *out.mutable_trade();
      trade.set_trade_id(t.trade_id);
      trade.set_instrument_id(t.instrument_id);
      trade.set_price(t.price);
      trade.set_quantity(t.quantity);
      trade.set_buy_order_id(t.buy_order_id);
      trade.set_sell_order_id(t.sell_order_id);
      trade.set_aggressor_side(to_proto<pb::Side>(t.aggressor_side));
      break;
    }
    case EventType::Level: {
      const LevelUpdate& l = in.level;
      pb::LevelUpdate& level = *out.mutable_level();
      level.set_instrument_id(l.instrument_id);
      level.set_side(to_proto<pb::Side>(l.side));
      level.set_price(l.price);
      level.set_quantity(l.quantity);
      level.set_action(to_proto<pb::LevelUpdate::Action>(l.action));
      break;
    }
  }
}

}  // namespace venue
