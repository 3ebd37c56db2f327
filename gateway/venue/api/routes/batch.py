"""Batch order entry: many orders in one request, one answer per order.

The hot path of the venue's ingress. A batch whose every order is good and has a
clientOrderId is decoded, checked, encoded and answered by venue._orderwire (C), when
built. Any other is decoded with msgspec (the documented schema is OrderBatch's), each
order checked by the same rules as POST /v1/orders, and answered in Python. Either way
the good orders of each shard are queued as one stream entry.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated

import msgspec
from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import Response

from venue.api.commands import encode_new_order
from venue.api.deps import AccountIdDep, OrderQueueDep, ShardLagDep
from venue.api.models import BatchAccepted, OrderBatch
from venue.api.openapi import request_body
from venue.api.order_wire import DECODE_ERRORS, CheckedOrder, WireOrder, batch_table, check
from venue.api.order_wire import decode_order, orderwire
from venue.api.shard_lag import Refusal, ShardLag
from venue.api.trace_context import traceparent_of
from venue.contract.config import VenueConfig
from venue.metrics import CHANNEL_BATCH, ORDERS_ACCEPTED, ORDERS_DUPLICATE, ORDERS_REJECTED
from venue.queue.order_queue import OrderQueue

router = APIRouter(prefix="/orders", tags=["orders"])

_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    orders: list[msgspec.Raw]


class WireOrders(msgspec.Struct, forbid_unknown_fields=True):
    orders: list[WireOrder]


_ACCEPTED = ORDERS_ACCEPTED.labels(channel=CHANNEL_BATCH)
_DUPLICATE = ORDERS_DUPLICATE.labels(channel=CHANNEL_BATCH)
_decode_body = msgspec.json.Decoder(_Body).decode
_decode_orders = msgspec.json.Decoder(WireOrders).decode
# The answer for a queued order, written directly: a batch answers thousands, and a
# clientOrderId matches CLIENT_ORDER_ID_PATTERN, so it never needs escaping.
_QUEUED = ('{"index":%d,"status":"pending_new","orderId":"%d","clientOrderId":"%s",'
           '"duplicate":%s}')


def _error(index: int, field: str, kind: str, message: str) -> dict:
    return {"loc": ["body", "orders", index, field] if field else ["body", "orders", index],
            "msg": message, "type": kind}


def _rejected(index: int, errors: list[dict]) -> dict:
    return {"index": index, "status": "rejected", "errors": errors}


def _decode_error(index: int, error: Exception) -> dict:
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
                "every order was refused for backpressure (with no `results` when the "
                "venue as a whole refuses new orders: then no order was looked at).",
    openapi_extra=request_body(OrderBatch))
async def submit_batch(request: Request, account_id: AccountIdDep, queue: OrderQueueDep,
                       shard_lag: ShardLagDep,
                       traceparent: Annotated[str | None, Header()] = None) -> Response:
    limit = request.app.state.settings.batch_max_orders
    body = await request.body()  # read even when refused: the connection goes on
    if (refusal := shard_lag.venue_refusal) is not None:
        # Every order would be refused: said before the body is decoded, as cheaply as
        # the gateway can, since this is when the venue is short of time.
        ORDERS_REJECTED.labels(channel=CHANNEL_BATCH, reason=refusal.reason).inc()
        return Response(msgspec.json.encode({
            "detail": refusal.detail, "reason": refusal.reason,
            "retryAfter": refusal.retry_after}), status_code=429,
            media_type="application/json", headers={"Retry-After": str(refusal.retry_after)})
    venue = queue.venue
    table = batch_table(venue)
    scanned = orderwire.scan(table, body) if table is not None else None
    if scanned is not None:  # every order good and with a clientOrderId: C does the work
        count, plan, shards = scanned
        if count <= limit and all(shard_lag.shard_refusal(s) is None for s in shards):
            return await _queue_scanned(queue, table, body, count, plan, shards, account_id,
                                        traceparent_of(traceparent))
    try:  # the common case: every order well-formed, decoded in one go
        orders: list[WireOrder | None] = _decode_orders(body).orders
        results: list[str | dict | None] = [None] * len(orders)
    except DECODE_ERRORS:
        orders, results = _decode_one_by_one(body)
    if not 1 <= len(orders) <= limit:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, [{
            "loc": ["body", "orders"], "type": "batch_size",
            "msg": f"a batch holds 1 to {limit} orders, not {len(orders)}"}])

    by_shard = _checked(venue, orders, results, shard_lag)
    good = sum(len(shard_orders) for shard_orders in by_shard.values())
    order_ids = iter(await queue.next_order_ids(good)) if good else iter(())
    # The entry's traceparent is every order's: the submitter puts it on each command.
    traceparent = traceparent_of(traceparent)

    async def queue_shard(shard: int, checked: list[tuple[int, WireOrder, int, int, int]]) -> None:
        ids = [next(order_ids) for _ in checked]
        coids = [order.client_order_id or str(order_id)
                 for order_id, (_, order, *_) in zip(ids, checked)]
        commands = [encode_new_order(
            order, order_id=order_id, client_order_id=coid, account_id=account_id,
            instrument_id=instrument_id, price_ticks=price_ticks, quantity_lots=quantity_lots)
            for order_id, coid, (_, order, instrument_id, price_ticks, quantity_lots)
            in zip(ids, coids, checked)]
        if all(order.client_order_id is not None for _, order, *_ in checked):
            _, originals = await queue.enqueue_new_orders(shard, account_id, ids, coids,
                                                          commands, traceparent)
        else:  # orders without a clientOrderId claim none
            answers = await queue.enqueue_entry(shard, [
                (order_id, command, account_id, order.client_order_id, True)  # QueuedCommand
                for order_id, command, (_, order, *_) in zip(ids, commands, checked)],
                traceparent)
            originals = [str(a.order_id).encode() if a.duplicate else b"" for a in answers]
        duplicates = 0
        for (index, *_), order_id, coid, original in zip(checked, ids, coids, originals):
            if original:
                duplicates += 1
                results[index] = _QUEUED % (index, int(original), coid, "true")
            else:
                results[index] = _QUEUED % (index, order_id, coid, "false")
        _ACCEPTED.inc(len(ids) - duplicates)
        _DUPLICATE.inc(duplicates)

    await asyncio.gather(*(queue_shard(shard, checked) for shard, checked in by_shard.items()))
    refusals = []
    for result in results:
        if isinstance(result, dict):
            ORDERS_REJECTED.labels(channel=CHANNEL_BATCH,
                                   reason=result["errors"][0]["type"]).inc()
            if "retryAfter" in result:
                refusals.append(result["retryAfter"])
    items = ",".join(r if isinstance(r, str) else msgspec.json.encode(r).decode()
                     for r in results)
    rejected = sum(isinstance(r, dict) for r in results)
    body = (f'{{"accepted":{len(results) - rejected},"rejected":{rejected},'
            f'"results":[{items}]}}').encode()
    if refusals:  # the client is told when to send the refused orders again
        headers = {"Retry-After": str(max(refusals))}
        code = 429 if len(refusals) == len(results) else 200
        return Response(body, status_code=code, media_type="application/json", headers=headers)
    return Response(body, media_type="application/json")


async def _queue_scanned(queue: OrderQueue, table: object, body: bytes, count: int,
                         plan: bytes, shards: list[int], account_id: int,
                         traceparent: str) -> Response:
    """A batch venue._orderwire decoded and checked: its orders queued, one entry per
    shard, and the answer written, all without a Python object per order."""
    ids = await queue.next_order_ids(count)
    groups = orderwire.encode(table, body, plan, ids, account_id, shards)
    answers = await asyncio.gather(*(
        queue.enqueue_encoded(shard, account_id, order_ids, coids, frames, sizes, traceparent)
        for shard, (order_ids, coids, frames, sizes) in zip(shards, groups)))
    originals = [found for _, found in answers]
    duplicates = sum(1 for found in originals for original in found if original)
    _ACCEPTED.inc(count - duplicates)
    _DUPLICATE.inc(duplicates)
    return Response(orderwire.answer(table, body, plan, ids, shards, originals),
                    media_type="application/json")


def _decode_one_by_one(body: bytes) -> tuple[list[WireOrder | None], list[str | dict | None]]:
    """The orders of a batch some of which are malformed: those are None, with their
    rejection in the results."""
    try:
        raws = _decode_body(body).orders
    except DECODE_ERRORS as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, [{
            "loc": ["body"], "msg": str(error), "type": "json_invalid"}]) from None
    orders: list[WireOrder | None] = []
    results: list[str | dict | None] = [None] * len(raws)
    for index, raw in enumerate(raws):
        try:
            orders.append(decode_order(raw))
        except DECODE_ERRORS as error:
            orders.append(None)
            results[index] = _rejected(index, [_decode_error(index, error)])
    return orders, results


def _checked(venue: VenueConfig, orders: list[WireOrder | None], results: list,
             shard_lag: ShardLag) -> dict[int, list[tuple[int, WireOrder, int, int, int]]]:
    """The good orders by shard, as (index, order, instrument id, price ticks, quantity
    lots); each bad or refused one gets its rejection in `results`."""
    by_shard: dict[int, list[tuple[int, WireOrder, int, int, int]]] = {}
    refusals: dict[int, Refusal | None] = {}
    for index, order in enumerate(orders):
        if order is None:
            continue
        checked = check(venue, order)
        if not isinstance(checked, CheckedOrder):
            results[index] = _rejected(index, [_error(index, p.field, p.kind, p.message)
                                               for p in checked])
            continue
        _, instrument, price_ticks, quantity_lots = checked
        shard = venue.shard_of(instrument)
        if shard not in refusals:
            refusals[shard] = shard_lag.shard_refusal(shard)
        refusal = refusals[shard]
        if refusal is not None:
            results[index] = _rejected(index, [_error(
                index, "symbol", refusal.reason, f"{order.symbol}: {refusal.detail}")])
            results[index]["retryAfter"] = refusal.retry_after
            continue
        by_shard.setdefault(shard, []).append(
            (index, order, instrument.id, price_ticks, quantity_lots))
    return by_shard
