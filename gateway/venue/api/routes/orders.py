"""Order entry and order status."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import APIRouter, Header, HTTPException, Path, status
from fastapi.responses import Response

from venue.api.commands import decode_new_order, encode_new_order
from venue.api.deps import AccountIdDep, DbDep, OrderQueueDep, VenueDep
from venue.api.models import (Accepted, Order, OrderRequest, OrderStatus, OrderType,
                              unknown_symbol)
from venue.api.trace_context import traceparent_of
from venue.config import VenueConfig
from venue.enginepb import engine_pb2
from venue.enginewire import ORDER_TYPE_WORDS, SIDE_WORDS, TIME_IN_FORCE_WORDS
from venue.instruments import Instrument

router = APIRouter(prefix="/orders", tags=["orders"])

_ORDER_COLUMNS = ("order_id, client_order_id, instrument_id, side, type, time_in_force, "
                  "post_only, price, quantity, status, cum_qty, leaves_qty, cum_notional, "
                  "reject_reason, created_at, updated_at")


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted,
             summary="Submit an order",
             description="Validates the order, queues it for the engine and answers at once. "
                         "202 means durably queued, not yet matched.")
async def submit_order(order: OrderRequest, account_id: AccountIdDep, queue: OrderQueueDep,
                       traceparent: Annotated[str | None, Header()] = None) -> Response:
    venue = queue.venue  # rather than one more dependency to resolve on the order path
    instrument = venue.by_symbol.get(order.symbol)
    if instrument is None:
        raise unknown_symbol(order.symbol)
    price_ticks, quantity_lots = order.on_grid(instrument)
    order_id = await queue.next_order_id()
    client_order_id = order.client_order_id or str(order_id)
    command = encode_new_order(order, order_id=order_id, client_order_id=client_order_id,
                               account_id=account_id, instrument_id=instrument.id,
                               price_ticks=price_ticks, quantity_lots=quantity_lots)
    enqueued = await queue.enqueue(
        shard=venue.shard_of(instrument), order_id=order_id, command=command,
        traceparent=traceparent_of(traceparent), account_id=account_id,
        client_order_id=order.client_order_id)
    accepted = Accepted(order_id=str(enqueued.order_id), client_order_id=client_order_id,
                        duplicate=enqueued.duplicate)
    # Serialized here rather than through response_model: the order path skips a
    # second validation of a model it has just built.
    return Response(accepted.model_dump_json(by_alias=True), status_code=202,
                    media_type="application/json")


@router.get("/{order_id}", summary="An order's latest state",
            responses={404: {"description": "No such order for this account"}})
async def get_order(order_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
                    account_id: AccountIdDep, venue: VenueDep, db: DbDep,
                    queue: OrderQueueDep) -> Order:
    row = await db.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders "
                            "WHERE order_id = $1 AND account_id = $2", order_id, account_id)
    if row is not None:
        return _reported_order(row, _instrument(venue, row["instrument_id"], order_id))
    # Not reported on by the engine yet: the queued command is all there is.
    command = await queue.pending_command(order_id)
    pending = decode_new_order(command) if command is not None else None
    if pending is None or pending.account_id != account_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id} not found")
    return _pending_order(pending, _instrument(venue, pending.instrument_id, order_id))


def _instrument(venue: VenueConfig, instrument_id: int, order_id: int) -> Instrument:
    instrument = venue.by_id.get(instrument_id)
    if instrument is None:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR,
                            f"order {order_id} is on instrument id {instrument_id}, "
                            "which this venue no longer lists")
    return instrument


def _reported_order(row: asyncpg.Record, instrument: Instrument) -> Order:
    return Order(
        order_id=str(row["order_id"]), client_order_id=row["client_order_id"],
        symbol=instrument.symbol, side=row["side"], type=row["type"],
        time_in_force=row["time_in_force"], post_only=row["post_only"],
        price=instrument.price_text(row["price"]) if row["type"] == OrderType.LIMIT else None,
        quantity=instrument.quantity_text(row["quantity"]), status=row["status"],
        cum_qty=instrument.quantity_text(row["cum_qty"]),
        leaves_qty=instrument.quantity_text(row["leaves_qty"]),
        avg_px=instrument.average_price_text(int(row["cum_notional"]), row["cum_qty"]),
        reject_reason=row["reject_reason"], created_at=row["created_at"],
        updated_at=row["updated_at"])


def _pending_order(new_order: engine_pb2.NewOrder, instrument: Instrument) -> Order:
    order_type = ORDER_TYPE_WORDS[new_order.type]
    return Order(
        order_id=str(new_order.order_id), client_order_id=new_order.client_order_id,
        symbol=instrument.symbol, side=SIDE_WORDS[new_order.side], type=order_type,
        time_in_force=TIME_IN_FORCE_WORDS[new_order.time_in_force],
        post_only=new_order.post_only,
        price=instrument.price_text(new_order.price) if order_type == OrderType.LIMIT else None,
        quantity=instrument.quantity_text(new_order.quantity), status=OrderStatus.PENDING_NEW,
        cum_qty=instrument.quantity_text(0),
        leaves_qty=instrument.quantity_text(new_order.quantity), avg_px=None,
        reject_reason=None, created_at=None, updated_at=None)
