"""Batch order entry: many orders in one request, one answer per order.

The hot path of the venue's ingress. The body is decoded with msgspec (the documented
schema is OrderBatch's), each order is checked by the same rules as POST /v1/orders,
and the good ones of each shard are queued as one stream entry.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Literal

import msgspec
from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import Response

from venue.api.commands import encode_new_order
from venue.api.deps import AccountIdDep, OrderQueueDep, ShardLagDep
from venue.api.models import (CLIENT_ORDER_ID_PATTERN, BatchAccepted, OrderBatch,
                              post_only_problem, price_problem)
from venue.api.trace_context import traceparent_of
from venue.instruments import Problem
from venue.metrics import CHANNEL_BATCH, ORDERS_ACCEPTED, ORDERS_DUPLICATE, ORDERS_REJECTED
from venue.queue import QueuedCommand

router = APIRouter(prefix="/orders", tags=["orders"])

_CLIENT_ORDER_ID = re.compile(CLIENT_ORDER_ID_PATTERN)
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


class _Order(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """OrderRequest, as msgspec decodes it: types and enums here, the rest below."""

    symbol: str
    side: Literal["buy", "sell"]
    quantity: str
    type: Literal["limit", "market"] = "limit"
    time_in_force: Literal["gtc", "ioc", "fok", "day"] = "gtc"
    price: str | None = None
    client_order_id: str | None = None
    post_only: bool = False


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    orders: list[msgspec.Raw]


_ACCEPTED = ORDERS_ACCEPTED.labels(channel=CHANNEL_BATCH)
_DUPLICATE = ORDERS_DUPLICATE.labels(channel=CHANNEL_BATCH)
_decode_body = msgspec.json.Decoder(_Body).decode
_decode_order = msgspec.json.Decoder(_Order).decode


def _error(index: int, field: str, kind: str, message: str) -> dict:
    return {"loc": ["body", "orders", index, field] if field else ["body", "orders", index],
            "msg": message, "type": kind}


def _rejected(index: int, errors: list[dict]) -> dict:
    return {"index": index, "status": "rejected", "errors": errors}


def _decode_error(index: int, error: msgspec.MsgspecError) -> dict:
    text = str(error)
    at = _AT_PATH.search(text)
    field = at.group(1) if at else ""
    message = _AT_PATH.sub("", text)
    if not isinstance(error, msgspec.ValidationError):  # (a subclass of DecodeError)
        return _error(index, "", "json_invalid", message)
    kind = "missing" if message.startswith("Object missing required field") else "invalid"
    if kind == "missing":
        field = message.rsplit("`", 2)[-2]
    return _error(index, field, kind, message)


@router.post(
    "/batch", response_model=BatchAccepted, summary="Submit a batch of orders",
    description="Each order is checked and answered on its own: `results[i]` says whether "
                "`orders[i]` was queued (with its orderId) or rejected (with the field and "
                "the reason). The queued orders of one instrument are queued together, in "
                "the order given. 200 even when some orders were rejected; 429 only when "
                "every order was refused for backpressure.",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": OrderBatch.model_json_schema(by_alias=True)}}}})
async def submit_batch(request: Request, account_id: AccountIdDep, queue: OrderQueueDep,
                       shard_lag: ShardLagDep,
                       traceparent: Annotated[str | None, Header()] = None) -> Response:
    venue = queue.venue
    limit = request.app.state.settings.batch_max_orders
    try:
        body = _decode_body(await request.body())
    except msgspec.MsgspecError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, [{
            "loc": ["body"], "msg": str(error), "type": "json_invalid"}]) from None
    if not 1 <= len(body.orders) <= limit:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, [{
            "loc": ["body", "orders"], "type": "batch_size",
            "msg": f"a batch holds 1 to {limit} orders, not {len(body.orders)}"}])

    results: list[dict | None] = [None] * len(body.orders)
    by_shard: dict[int, list[tuple[int, _Order, int, int, int]]] = {}
    for index, raw in enumerate(body.orders):
        try:
            order = _decode_order(raw)
        except msgspec.MsgspecError as error:
            results[index] = _rejected(index, [_decode_error(index, error)])
            continue
        instrument = venue.by_symbol.get(order.symbol)
        if instrument is None:
            results[index] = _rejected(index, [_error(
                index, "symbol", "unknown_symbol",
                f"symbol {order.symbol!r} is not traded on this venue")])
            continue
        problems: list[Problem] = [p for p in (price_problem(order.type, order.price),
                                               post_only_problem(order.type, order.post_only))
                                   if p is not None]
        if order.client_order_id is not None and not _CLIENT_ORDER_ID.match(
                order.client_order_id):
            problems.append(Problem("clientOrderId", "string_pattern_mismatch",
                                    f"clientOrderId must match {CLIENT_ORDER_ID_PATTERN}"))
        if not problems:
            price_ticks, quantity_lots, problems = instrument.order_terms(
                order.price, order.quantity)
        if problems:
            results[index] = _rejected(index, [_error(index, p.field, p.kind, p.message)
                                               for p in problems])
            continue
        shard = venue.shard_of(instrument)
        retry_after = shard_lag.shard_refusal(shard)
        if retry_after is not None:
            results[index] = _rejected(index, [_error(
                index, "symbol", "shard_busy",
                f"shard {shard} ({order.symbol}) is over its queue limit")])
            results[index]["retryAfter"] = retry_after
            continue
        by_shard.setdefault(shard, []).append(
            (index, order, instrument.id, price_ticks, quantity_lots))

    good = sum(len(orders) for orders in by_shard.values())
    order_ids = iter(await queue.next_order_ids(good)) if good else iter(())
    trace = traceparent_of(traceparent)

    async def queue_shard(shard: int, orders: list[tuple[int, _Order, int, int, int]]) -> None:
        commands = []
        for index, order, instrument_id, price_ticks, quantity_lots in orders:
            order_id = next(order_ids)
            client_order_id = order.client_order_id or str(order_id)
            commands.append(QueuedCommand(
                order_id=order_id, account_id=account_id,
                client_order_id=order.client_order_id,
                command=encode_new_order(
                    order, order_id=order_id, client_order_id=client_order_id,
                    account_id=account_id, instrument_id=instrument_id,
                    price_ticks=price_ticks, quantity_lots=quantity_lots)))
        for (index, order, *_), command, queued in zip(
                orders, commands, await queue.enqueue_entry(shard, commands, trace)):
            results[index] = {"index": index, "status": "pending_new",
                              "orderId": str(queued.order_id),
                              "clientOrderId": order.client_order_id or str(command.order_id),
                              "duplicate": queued.duplicate}

    await asyncio.gather(*(queue_shard(shard, orders) for shard, orders in by_shard.items()))
    accepted = duplicates = 0
    refusals = []
    for result in results:
        if result["status"] == "pending_new":
            accepted += 1
            duplicates += result["duplicate"]
        else:
            ORDERS_REJECTED.labels(channel=CHANNEL_BATCH,
                                   reason=result["errors"][0]["type"]).inc()
            if "retryAfter" in result:
                refusals.append(result["retryAfter"])
    _ACCEPTED.inc(accepted - duplicates)
    _DUPLICATE.inc(duplicates)
    body = msgspec.json.encode({"accepted": accepted, "rejected": len(results) - accepted,
                                "results": results})
    if refusals:  # the client is told when to send the refused orders again
        headers = {"Retry-After": str(max(refusals))}
        code = 429 if len(refusals) == len(results) else 200
        return Response(body, status_code=code, media_type="application/json", headers=headers)
    return Response(body, media_type="application/json")
