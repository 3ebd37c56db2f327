"""Execution reports as the WebSocket pushes them: decimal strings, venue words."""

from __future__ import annotations

from venue.api.reports import report_message
from venue.contract.config import VenueConfig
from venue.enginepb import engine_pb2 as pb

VENUE = VenueConfig()
BTC = VENUE.by_symbol["BTC-USD"]


def event(**report) -> pb.Event:
    return pb.Event(sequence=42, timestamp_ns=1_735_787_045_123_456_789,
                    report=pb.ExecutionReport(**report))


def test_a_fill_reads_in_decimal_strings_with_its_sequence() -> None:
    message = report_message(VENUE, 0, event(
        order_id=7, client_order_id="c-7", account_id=1, instrument_id=BTC.id,
        side=pb.SIDE_BUY, type=pb.ORDER_TYPE_LIMIT, time_in_force=pb.TIME_IN_FORCE_GTC,
        price=10001, quantity=30000, exec_type=pb.EXEC_TYPE_TRADE,
        order_status=pb.ORDER_STATUS_PARTIALLY_FILLED, last_qty=10000, last_px=10001,
        cum_qty=20000, leaves_qty=10000, cum_notional=10000 * 10000 + 10000 * 10001,
        trade_id=3))
    assert message == {
        "type": "report", "partition": 0, "sequence": 42,
        "time": "2025-01-02T03:04:05.123456Z", "orderId": "7", "clientOrderId": "c-7",
        "symbol": "BTC-USD", "side": "buy", "orderType": "limit", "timeInForce": "gtc",
        "execType": "trade", "orderStatus": "partially_filled", "price": "100.01",
        "quantity": "3.0000", "lastQty": "1.0000", "lastPx": "100.01", "cumQty": "2.0000",
        "leavesQty": "1.0000", "avgPx": "100.005", "rejectReason": None, "tradeId": "3"}


def test_a_reject_names_its_reason_and_no_fill() -> None:
    message = report_message(VENUE, 0, event(
        order_id=8, instrument_id=BTC.id, type=pb.ORDER_TYPE_MARKET,
        exec_type=pb.EXEC_TYPE_REJECTED, order_status=pb.ORDER_STATUS_REJECTED,
        reject_reason=pb.REJECT_REASON_NO_LIQUIDITY, quantity=5000))
    assert message | {"execType": "rejected", "rejectReason": "no_liquidity", "price": None,
                      "lastPx": None, "avgPx": None, "tradeId": None,
                      "lastQty": "0.0000"} == message
