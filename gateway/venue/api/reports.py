"""Execution reports as clients read them: the engine's integers as decimal strings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from venue.contract.config import VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.contract.wire import (EXEC_TYPE_WORDS, ORDER_STATUS_WORDS, ORDER_TYPE_WORDS,
                                 REJECT_REASON_WORDS, SIDE_WORDS, TIME_IN_FORCE_WORDS)

_EPOCH = datetime(1970, 1, 1)  # naive: the Z is written, as REST's pydantic writes UTC


def engine_time(timestamp_ns: int) -> str:
    """The engine's clock (unix ns) as ISO 8601 in UTC, to the microsecond, as every REST
    time reads ("2026-12-03T15:04:05.123456Z")."""
    return (_EPOCH + timedelta(microseconds=timestamp_ns // 1000)).isoformat() + "Z"


def report_message(venue: VenueConfig, partition: int, event: pb.Event) -> dict[str, Any]:
    """The WebSocket message of one ExecutionReport event.

    quantity = cumQty + leavesQty while the order lives; avgPx is null before a fill and
    lastPx when this event is not a fill.
    """
    report = event.report
    instrument = venue.by_id.get(report.instrument_id)
    # A report on an instrument the venue no longer lists keeps its raw units.
    price = instrument.price_text if instrument is not None else str
    quantity = instrument.quantity_text if instrument is not None else str
    limit = report.type == pb.ORDER_TYPE_LIMIT
    filled = report.exec_type == pb.EXEC_TYPE_TRADE
    return {
        "type": "report",
        "partition": partition,
        "sequence": event.sequence,
        "time": engine_time(event.timestamp_ns),
        "orderId": str(report.order_id),
        "clientOrderId": report.client_order_id,
        "symbol": instrument.symbol if instrument is not None else None,
        "side": SIDE_WORDS.get(report.side),
        "orderType": ORDER_TYPE_WORDS.get(report.type),
        "timeInForce": TIME_IN_FORCE_WORDS.get(report.time_in_force),
        "execType": EXEC_TYPE_WORDS.get(report.exec_type),
        "orderStatus": ORDER_STATUS_WORDS.get(report.order_status),
        "price": price(report.price) if limit and report.price else None,
        "quantity": quantity(report.quantity),
        "lastQty": quantity(report.last_qty),
        "lastPx": price(report.last_px) if filled else None,
        "cumQty": quantity(report.cum_qty),
        "leavesQty": quantity(report.leaves_qty),
        "avgPx": (instrument.average_price_text(report.cum_notional, report.cum_qty)
                  if instrument is not None else None),
        "rejectReason": REJECT_REASON_WORDS.get(report.reject_reason),
        "tradeId": str(report.trade_id) if filled else None,
    }
