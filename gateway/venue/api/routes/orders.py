"""Order entry, cancel and replace, order status and the account's order list."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import Response

from venue.api.commands import decode_new_order
from venue.api.parameters import Digits
from venue.api.deps import AccountIdDep, DbDep, OrderEntryDep, OrderQueueDep, VenueDep
from venue.api.models import (Accepted, Order, OrderChangeAccepted, OrderChangeRefused,
                              OrderFilter, OrderPage, OrderStatus, OrderType)
from venue.api.openapi import request_body
from venue.api.order_entry import OrderEntry, OrderNotFound
from venue.api.order_rules import (CLIENT_ORDER_ID_PATTERN, CheckedOrder, OrderRef,
                                   OrderRequest, ReplaceRequest, RequestRejected, Terms,
                                   new_order_json, replace_terms_json)
from venue.api.order_wire import accepted_json
from venue.api.trace_context import traceparent_of
from venue.contract.config import VenueConfig
from venue.enginepb import engine_pb2
from venue.contract.wire import ORDER_TYPE_WORDS, SIDE_WORDS, TIME_IN_FORCE_WORDS
from venue.contract.instruments import Instrument

router = APIRouter(prefix="/orders", tags=["orders"])

_ORDER_COLUMNS = ("order_id, client_order_id, instrument_id, side, type, time_in_force, "
                  "post_only, price, quantity, status, cum_qty, leaves_qty, cum_notional, "
                  "reject_reason, created_at, updated_at")
# Literal predicates, not parameters: the planner can then use the partial index of
# open orders (orders_open).
_FILTER_PREDICATES = {
    OrderFilter.OPEN: "status IN ('new', 'partially_filled')",
    OrderFilter.FILLED: "status = 'filled'",
    OrderFilter.CANCELED: "status = 'canceled'",
    OrderFilter.REJECTED: "status = 'rejected'",
    OrderFilter.EXPIRED: "status = 'expired'",
    OrderFilter.ALL: "true",
}

OrderIdPath = Annotated[Digits, Path(ge=1, le=2**63 - 1, description="The venue's order id.")]
ClientOrderIdPath = Annotated[str, Path(pattern=CLIENT_ORDER_ID_PATTERN,
                                        description="Your clientOrderId of the order.")]
TraceparentHeader = Annotated[str | None, Header(description="W3C trace context.")]

_CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such order for this account (another account's order reads "
                         "the same)"},
    409: {"model": OrderChangeRefused,
          "description": "The order is filled, canceled, rejected or expired: nothing to "
                         "change, nothing queued"},
}


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted,
             summary="Submit an order",
             description="Validates the order, queues it for the engine and answers at once. "
                         "202 means durably queued, not yet matched (duplicate: true when "
                         "its clientOrderId was sent within the dedup window: the original "
                         "order, not a second one; the window is the venue's, ten minutes "
                         "unless spec.gateway.dedupWindow says otherwise, and a repeat later "
                         "than twice the window is a new order). 429 with Retry-After "
                         "when the instrument's shard is over its queue limit (nothing "
                         "queued).",
             responses={429: {"description": "The order's shard is over its queue limit; "
                                             "retry after Retry-After seconds"}},
             openapi_extra=request_body(OrderRequest))
async def submit_order(request: Request, account_id: AccountIdDep,
                       traceparent: TraceparentHeader = None) -> Response:
    # The body is read here, not by FastAPI: the order is decoded and checked by
    # venue.api.order_rules, which words what is wrong as any 422 is worded.
    entry: OrderEntry = request.app.state.order_entry
    checked = new_order_json(entry.venue, await request.body())
    if not isinstance(checked, CheckedOrder):
        raise RequestRejected(checked)
    enqueued, client_order_id = await entry.submit(checked, account_id,
                                                   traceparent_of(traceparent))
    return Response(accepted_json(enqueued.order_id, client_order_id, enqueued.duplicate),
                    status_code=202, media_type="application/json")


@router.get("", summary="The account's orders, newest first",
            description="Orders the engine has reported on, from the database, newest "
                        "first; a page ends at `limit` orders and names the `after` of the "
                        "next one. Orders still queued (pending_new) are at "
                        "GET /v1/orders/{orderId}.",
            responses={422: {"description": "Unknown symbol or bad paging"}})
async def list_orders(
        account_id: AccountIdDep, venue: VenueDep, db: DbDep,
        status_filter: Annotated[OrderFilter, Query(
            alias="status", description="open (new or partially_filled), filled, canceled, "
                                        "rejected, expired or all.")] = OrderFilter.ALL,
        symbol: Annotated[str | None, Query(max_length=32)] = None,
        limit: Annotated[Digits, Query(ge=1, le=1000)] = 100,
        after: Annotated[Digits | None, Query(
            ge=1, le=2**63 - 1, description="Only orders with a smaller orderId: the "
                                            "`nextAfter` of the previous page.")] = None,
) -> OrderPage:
    conditions = ["account_id = $1", _FILTER_PREDICATES[status_filter]]
    arguments: list[Any] = [account_id]
    if symbol is not None:
        instrument = venue.by_symbol.get(symbol)
        if instrument is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
                "loc": ["query", "symbol"], "type": "unknown_symbol",
                "msg": f"symbol {symbol!r} is not traded on this venue", "input": symbol}])
        arguments.append(instrument.id)
        conditions.append(f"instrument_id = ${len(arguments)}")
    if after is not None:
        arguments.append(after)
        conditions.append(f"order_id < ${len(arguments)}")
    arguments.append(limit)
    rows = await db.fetch(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE "
                          f"{' AND '.join(conditions)} ORDER BY order_id DESC "
                          f"LIMIT ${len(arguments)}", *arguments)
    orders = [_reported_order(row, _instrument(venue, row["instrument_id"], row["order_id"]))
              for row in rows]
    return OrderPage(orders=orders,
                     next_after=orders[-1].order_id if len(orders) == limit else None)


@router.get("/{order_id}", summary="An order's latest state",
            responses={404: {"description": "No such order for this account"}})
async def get_order(order_id: OrderIdPath, account_id: AccountIdDep, venue: VenueDep,
                    db: DbDep, queue: OrderQueueDep) -> Order:
    query = f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = $1 AND account_id = $2"
    row = await db.fetchrow(query, order_id, account_id)
    if row is None:
        # Not in Postgres yet: the queued command is all there is, unless the writer
        # persisted it (and dropped it from the queued runs) between the two looks.
        command = await queue.queued_command(order_id)
        pending = decode_new_order(command) if command is not None else None
        if pending is not None and pending.account_id == account_id:
            return _pending_order(pending, _instrument(venue, pending.instrument_id, order_id))
        row = await db.fetchrow(query, order_id, account_id)
    if row is None:
        raise OrderNotFound(str(order_id))
    return _reported_order(row, _instrument(venue, row["instrument_id"], order_id))


@router.get("/by-client-id/{client_order_id}", summary="An order's latest state, by its "
            "clientOrderId", responses={404: {"description": "No such order for this account"}})
async def get_order_by_client_id(client_order_id: ClientOrderIdPath, account_id: AccountIdDep,
                                 venue: VenueDep, db: DbDep, queue: OrderQueueDep,
                                 entry: OrderEntryDep) -> Order:
    # Found as a cancel or replace finds it (Postgres, else the claim of a queued order),
    # then read as GET /v1/orders/{orderId} reads it.
    known = await entry.find(OrderRef(client_order_id=client_order_id), account_id)
    return await get_order(known.order_id, account_id, venue, db, queue)


@router.delete("/{order_id}", status_code=status.HTTP_202_ACCEPTED,
               summary="Cancel an order", responses=_CHANGE_RESPONSES,
               description="Queues a cancel behind the order on its shard, so it never "
                           "overtakes the order. The result (canceled, or the cancel "
                           "rejected because the order filled first) appears at "
                           "GET /v1/orders/{orderId}.")
async def cancel_order(order_id: OrderIdPath, account_id: AccountIdDep, entry: OrderEntryDep,
                       traceparent: TraceparentHeader = None) -> OrderChangeAccepted:
    return await entry.cancel(OrderRef(order_id=order_id), account_id,
                              traceparent_of(traceparent))


@router.delete("/by-client-id/{client_order_id}", status_code=status.HTTP_202_ACCEPTED,
               summary="Cancel an order by its clientOrderId", responses=_CHANGE_RESPONSES)
async def cancel_order_by_client_id(client_order_id: ClientOrderIdPath,
                                    account_id: AccountIdDep, entry: OrderEntryDep,
                                    traceparent: TraceparentHeader = None
                                    ) -> OrderChangeAccepted:
    return await entry.cancel(OrderRef(client_order_id=client_order_id), account_id,
                              traceparent_of(traceparent))


@router.patch("/{order_id}", status_code=status.HTTP_202_ACCEPTED,
              summary="Replace (amend) an order", responses=_CHANGE_RESPONSES,
              openapi_extra=request_body(ReplaceRequest),
              description="New price and/or new total quantity, checked against the "
                          "instrument like a new order (422 naming the field). Reducing "
                          "the quantity at the same price keeps time priority; a new price "
                          "or more quantity loses it. Queued behind the order on its shard.")
async def replace_order(request: Request, order_id: OrderIdPath, account_id: AccountIdDep,
                        entry: OrderEntryDep,
                        traceparent: TraceparentHeader = None) -> OrderChangeAccepted:
    return await entry.replace(OrderRef(order_id=order_id), await _terms(request), account_id,
                               traceparent_of(traceparent))


@router.patch("/by-client-id/{client_order_id}", status_code=status.HTTP_202_ACCEPTED,
              summary="Replace (amend) an order by its clientOrderId",
              responses=_CHANGE_RESPONSES, openapi_extra=request_body(ReplaceRequest))
async def replace_order_by_client_id(request: Request, client_order_id: ClientOrderIdPath,
                                     account_id: AccountIdDep, entry: OrderEntryDep,
                                     traceparent: TraceparentHeader = None
                                     ) -> OrderChangeAccepted:
    return await entry.replace(OrderRef(client_order_id=client_order_id),
                               await _terms(request), account_id, traceparent_of(traceparent))


async def _terms(request: Request) -> Terms:
    """The new terms of a replace body, by venue.api.order_rules."""
    terms = replace_terms_json(await request.body())
    if not isinstance(terms, Terms):
        raise RequestRejected(terms)
    return terms


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
