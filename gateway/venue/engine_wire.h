/* engine/proto/engine.proto as the C extensions speak it: the field numbers they read
 * and write, named PB_<Message>_<field> after the .proto. Never retyped elsewhere:
 * tests/unit/test_wire_contract.py holds each to the generated descriptor, and finds no
 * field number written out in the C sources. */
#ifndef VENUE_ENGINE_WIRE_H
#define VENUE_ENGINE_WIRE_H

/* Wire types. */
#define WIRE_VARINT 0
#define WIRE_FIXED64 1
#define WIRE_BYTES 2
#define WIRE_FIXED32 5
/* The first byte of a field's key, for numbers below 16. */
#define KEY(field, wire) ((field) << 3 | (wire))

/* Command and NewOrder (venue._orderwire writes them). */
#define PB_Command_new_order 10
#define PB_NewOrder_order_id 1
#define PB_NewOrder_client_order_id 2
#define PB_NewOrder_account_id 3
#define PB_NewOrder_instrument_id 4
#define PB_NewOrder_side 5
#define PB_NewOrder_type 6
#define PB_NewOrder_time_in_force 7
#define PB_NewOrder_price 8
#define PB_NewOrder_quantity 9
#define PB_NewOrder_post_only 10

/* ReportBatch, Event, ExecutionReport, Trade and LevelUpdate (venue._reportwire reads
 * them). */
#define PB_ReportBatch_partition 2
#define PB_ReportBatch_events 3
#define PB_ReportBatch_next_sequence 4
#define PB_ReportBatch_timing 5
#define PB_BatchTiming_received_ns 1
#define PB_BatchTiming_match_start_ns 2
#define PB_BatchTiming_matched_ns 3
#define PB_BatchTiming_journaled_ns 4
#define PB_BatchTiming_answered_ns 5
#define PB_Event_sequence 1
#define PB_Event_timestamp_ns 2
#define PB_Event_report 10
#define PB_Event_trade 11
#define PB_Event_level 12
#define PB_ExecutionReport_order_id 1
#define PB_ExecutionReport_client_order_id 2
#define PB_ExecutionReport_account_id 3
#define PB_ExecutionReport_instrument_id 4
#define PB_ExecutionReport_side 5
#define PB_ExecutionReport_type 6
#define PB_ExecutionReport_time_in_force 7
#define PB_ExecutionReport_price 8
#define PB_ExecutionReport_quantity 9
#define PB_ExecutionReport_exec_type 10
#define PB_ExecutionReport_order_status 11
#define PB_ExecutionReport_last_qty 12
#define PB_ExecutionReport_last_px 13
#define PB_ExecutionReport_cum_qty 14
#define PB_ExecutionReport_leaves_qty 15
#define PB_ExecutionReport_cum_notional 16
#define PB_ExecutionReport_reject_reason 17
#define PB_ExecutionReport_trade_id 18
#define PB_ExecutionReport_post_only 19
#define PB_Trade_trade_id 1
#define PB_Trade_instrument_id 2
#define PB_Trade_price 3
#define PB_Trade_quantity 4
#define PB_Trade_buy_order_id 5
#define PB_Trade_sell_order_id 6
#define PB_Trade_aggressor_side 7
#define PB_LevelUpdate_instrument_id 1
#define PB_LevelUpdate_side 2
#define PB_LevelUpdate_price 3
#define PB_LevelUpdate_quantity 4

#endif
