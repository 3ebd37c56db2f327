#include "server/proto_convert.h"

#include <gtest/gtest.h>

namespace venue {
namespace {

TEST(ProtoConvert, NewOrderCommandKeepsEveryFieldAndItsOrigin) {
  pb::Command in;
  in.set_shard(3);
  in.set_stream_ms(1700000000000);
  in.set_stream_seq(9);
  pb::NewOrder& order = *in.mutable_new_order();
  order.set_order_id(42);
  order.set_client_order_id("abc-1");
  order.set_account_id(7);
  order.set_instrument_id(2);
  order.set_side(pb::SIDE_SELL);
  order.set_type(pb::ORDER_TYPE_LIMIT);
  order.set_time_in_force(pb::TIME_IN_FORCE_FOK);
  order.set_price(12345);
  order.set_quantity(6);
  order.set_post_only(true);

  const Command command = command_from_proto(in);
  ASSERT_EQ(command.type, CommandType::New);
  EXPECT_EQ(command.origin.shard, 3u);
  EXPECT_EQ(command.origin.stream_ms, 1700000000000u);
  EXPECT_EQ(command.origin.stream_seq, 9u);
  const NewOrder& out = command.new_order;
  EXPECT_EQ(out.order_id, 42u);
  EXPECT_EQ(out.client_order_id, "abc-1");
  EXPECT_EQ(out.account_id, 7u);
  EXPECT_EQ(out.instrument_id, 2u);
  EXPECT_EQ(out.side, Side::Sell);
  EXPECT_EQ(out.type, OrderType::Limit);
  EXPECT_EQ(out.time_in_force, TimeInForce::Fok);
  EXPECT_EQ(out.price, 12345);
  EXPECT_EQ(out.quantity, 6);
  EXPECT_TRUE(out.post_only);
}

TEST(ProtoConvert, UnknownEnumValuesBecomeUnspecifiedNotAnotherValue) {
  pb::Command in;
  pb::NewOrder& order = *in.mutable_new_order();
  order.set_side(static_cast<pb::Side>(257));  // would wrap to BUY in a byte
  order.set_type(static_cast<pb::OrderType>(9));
  order.set_time_in_force(static_cast<pb::TimeInForce>(260));
  const Command command = command_from_proto(in);
  EXPECT_EQ(command.new_order.side, Side::Unspecified);
  EXPECT_EQ(command.new_order.type, OrderType::Unspecified);
  EXPECT_EQ(command.new_order.time_in_force, TimeInForce::Unspecified);
}

TEST(ProtoConvert, CancelAndReplaceAndEmptyBodies) {
  pb::Command cancel;
  cancel.mutable_cancel()->set_order_id(5);
  cancel.mutable_cancel()->set_account_id(6);
  cancel.mutable_cancel()->set_instrument_id(7);
  const Command c = command_from_proto(cancel);
  ASSERT_EQ(c.type, CommandType::Cancel);
  EXPECT_EQ(c.cancel.order_id, 5u);
  EXPECT_EQ(c.cancel.account_id, 6u);
  EXPECT_EQ(c.cancel.instrument_id, 7u);

  pb::Command replace;
  replace.mutable_replace()->set_order_id(5);
  replace.mutable_replace()->set_price(100);
  replace.mutable_replace()->set_quantity(3);
  const Command r = command_from_proto(replace);
  ASSERT_EQ(r.type, CommandType::Replace);
  EXPECT_EQ(r.replace.price, 100);
  EXPECT_EQ(r.replace.quantity, 3);

  pb::Command empty;
  empty.set_stream_seq(4);
  const Command e = command_from_proto(empty);
  EXPECT_EQ(e.type, CommandType::Unknown);
  EXPECT_EQ(e.origin.stream_seq, 4u);
}

TEST(ProtoConvert, ReportCarriesEveryField) {
  Event event;
  event.sequence = 11;
  event.timestamp_ns = 22;
  ExecutionReport& r = event.report;
  r.order_id = 1;
  r.client_order_id.assign("cid");
  r.account_id = 2;
  r.instrument_id = 3;
  r.side = Side::Buy;
  r.type = OrderType::Limit;
  r.time_in_force = TimeInForce::Day;
  r.post_only = true;
  r.exec_type = ExecType::Trade;
  r.order_status = OrderStatus::PartiallyFilled;
  r.price = 100;
  r.quantity = 10;
  r.last_qty = 4;
  r.last_px = 99;
  r.cum_qty = 4;
  r.leaves_qty = 6;
  r.cum_notional = 396;
  r.trade_id = 8;
  r.shard = 5;
  r.stream_ms = 6;
  r.stream_seq = 7;

  pb::Event out;
  event_to_proto(event, out);
  EXPECT_EQ(out.sequence(), 11u);
  EXPECT_EQ(out.timestamp_ns(), 22);
  ASSERT_TRUE(out.has_report());
  const pb::ExecutionReport& p = out.report();
  EXPECT_EQ(p.order_id(), 1u);
  EXPECT_EQ(p.client_order_id(), "cid");
  EXPECT_EQ(p.account_id(), 2u);
  EXPECT_EQ(p.instrument_id(), 3u);
  EXPECT_EQ(p.side(), pb::SIDE_BUY);
  EXPECT_EQ(p.type(), pb::ORDER_TYPE_LIMIT);
  EXPECT_EQ(p.time_in_force(), pb::TIME_IN_FORCE_DAY);
  EXPECT_TRUE(p.post_only());
  EXPECT_EQ(p.exec_type(), pb::EXEC_TYPE_TRADE);
  EXPECT_EQ(p.order_status(), pb::ORDER_STATUS_PARTIALLY_FILLED);
  EXPECT_EQ(p.price(), 100);
  EXPECT_EQ(p.quantity(), 10);
  EXPECT_EQ(p.last_qty(), 4);
  EXPECT_EQ(p.last_px(), 99);
  EXPECT_EQ(p.cum_qty(), 4);
  EXPECT_EQ(p.leaves_qty(), 6);
  EXPECT_EQ(p.cum_notional(), 396);
  EXPECT_EQ(p.reject_reason(), pb::REJECT_REASON_NONE);
  EXPECT_EQ(p.trade_id(), 8u);
  EXPECT_EQ(p.shard(), 5u);
  EXPECT_EQ(p.stream_ms(), 6u);
  EXPECT_EQ(p.stream_seq(), 7u);
}

TEST(ProtoConvert, TradeAndLevelUpdate) {
  Event trade;
  trade.type = EventType::Trade;
  trade.trade = Trade{9, 1, 100, 5, 11, 12, Side::Sell};
  pb::Event out;
  event_to_proto(trade, out);
  ASSERT_TRUE(out.has_trade());
  EXPECT_EQ(out.trade().trade_id(), 9u);
  EXPECT_EQ(out.trade().buy_order_id(), 11u);
  EXPECT_EQ(out.trade().sell_order_id(), 12u);
  EXPECT_EQ(out.trade().aggressor_side(), pb::SIDE_SELL);

  Event level;
  level.type = EventType::Level;
  level.level = LevelUpdate{1, Side::Buy, 100, 0, LevelAction::Delete};
  pb::Event level_out;
  event_to_proto(level, level_out);
  ASSERT_TRUE(level_out.has_level());
  EXPECT_EQ(level_out.level().action(), pb::LevelUpdate::ACTION_DELETE);
  EXPECT_EQ(level_out.level().side(), pb::SIDE_BUY);
  EXPECT_EQ(level_out.level().price(), 100);
}

}  // namespace
}  // namespace venue
