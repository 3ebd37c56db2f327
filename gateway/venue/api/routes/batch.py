"""Batch order entry: many orders in one request, one answer per order.

The hot path of the venue's ingress. A batch whose every order is good and has a
clientOrderId is decoded, checked, encoded and answered by venue._orderwire (C). Any
other is decoded with msgspec (the documented schema is OrderBatch's), each order
checked by venue.api.order_rules as POST /v1/orders is, and answered in Python. Either
way the good orders of each shard are queued as one stream entry (OrderEntry).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.responses import Response

from venue.api.deps import AccountIdDep, OrderEntryDep, ShardLagDep
from venue.api.limits import open_orders_refusal
from venue.api.order_entry import BatchQueued, OrderEntry
from venue.api.models import BatchAccepted
from venue.api.openapi import request_body
from venue.api.order_rules import (DECODE_ERRORS, CheckedOrder, Error, OrderBatch, WireOrder,
                                   at, check, decode_json, decode_order, json_invalid,
                                   new_order, not_json, order_problem_errors,
                                   refuse_repeated_keys)
from venue.api.order_wire import batch_table, orderwire
from venue.api.backpressure import Refusal
from venue.api.shard_lag import ShardLag
from venue.api.trace_context import traceparent_of
from venue.contract.config import VenueConfig
from venue.metrics import CHANNEL_BATCH, ORDERS_REJECTED

router = APIRouter(prefix="/orders", tags=["orders"])


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    orders: list[msgspec.Raw]


class WireOrders(msgspec.Struct, forbid_unknown_fields=True):
    orders: list[WireOrder]


_decode_body = msgspec.json.Decoder(_Body).decode
_decode_orders = msgspec.json.Decoder(WireOrders).decode
# The answer for a queued order, written directly: a batch answers thousands, and a
# clientOrderId matches CLIENT_ORDER_ID_PATTERN, so it never needs escaping.
_QUEUED = ('{"index":%d,"status":"pending_new","orderId":"%d","clientOrderId":"%s",'
           '"duplicate":%s}')


def _refused(refusal: Refusal) -> Response:
    """429 for the whole batch, nothing of it looked at or queued."""
    ORDERS_REJECTED.labels(channel=CHANNEL_BATCH, reason=refusal.reason).inc()
    return Response(msgspec.json.encode({
        "detail": refusal.detail, "reason": refusal.reason,
        "retryAfter": refusal.retry_after}), status_code=429,
        media_type="application/json", headers={"Retry-After": str(refusal.retry_after)})


def _rejected(index: int, errors: list[Error]) -> dict:
    return {"index": index, "status": "rejected",
            "errors": at(("body", "orders", index), errors)}


@router.post(
    "/batch", response_model=BatchAccepted, summary="Submit a batch of orders",
    description="Each order is checked and answered on its own: `results[i]` says whether "
                "`orders[i]` was queued (with its orderId) or rejected (with the field and "
                "the reason). The queued orders of one instrument are queued together, in "
                "the order given. 200 even when some orders were rejected; 429 only when "
                "every order was refused for backpressure (with no `results` when the "
                "venue as a whole refuses new orders: then no order was looked at).",
    openapi_extra=request_body(OrderBatch))
async def submit_batch(request: Request, account_id: AccountIdDep, entry: OrderEntryDep,
                       shard_lag: ShardLagDep,
                       traceparent: Annotated[str | None, Header()] = None) -> Response:
    # A batch past the account's burst here could never pass its bucket: refused as too
    # large, not told to come back.
    largest = request.app.state.settings.batch_max_orders
    limit = min(largest, entry.limits.most_at_once)
    body = await request.body()  # read even when refused: the connection goes on
    if (refusal := shard_lag.venue_refusal) is not None:
        # Every order would be refused: said before the body is decoded, as cheaply as
        # the gateway can, since this is when the venue is short of time.
        return _refused(refusal)
    venue = entry.venue
    table = batch_table(venue)
    scanned = orderwire.scan(table, body) if table is not None else None
    if scanned is not None:  # every order good and with a clientOrderId: C does the work
        count, plan, shards = scanned
        if count <= limit and all(shard_lag.shard_refusal(s) is None for s in shards):
            if (refusal := entry.limits.orders(account_id, count)) is not None:
                return _refused(refusal)
            answer = await entry.submit_scanned(
                table, body, count, plan, shards, account_id, traceparent_of(traceparent))
            if isinstance(answer, bytes):
                return Response(answer, media_type="application/json")
            return _answer(entry, [None] * count, answer)  # some refused: worded here
    try:  # the common case: every order well-formed, decoded in one go
        orders: list[WireOrder | None] = _decode_orders(body).orders
        refuse_repeated_keys(body)
        results: list[str | dict | None] = [None] * len(orders)
    except DECODE_ERRORS:
        orders, results = _decode_one_by_one(venue, body)
    if not 1 <= len(orders) <= limit:
        why = "" if limit == largest else " (the burst of this account here)"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body", "orders"], "type": "batch_size", "input": None,
            "msg": f"a batch holds 1 to {limit} orders{why}, not {len(orders)}"}])

    if (refusal := entry.limits.orders(account_id, len(orders))) is not None:
        return _refused(refusal)
    by_shard = _checked(venue, orders, results, shard_lag)
    # The entry's traceparent is every order's: the submitter puts it on each command.
    queued = await entry.submit_batch(by_shard, account_id, traceparent_of(traceparent))
    return _answer(entry, results, queued)


def _answer(entry: OrderEntry, results: list[str | dict | None],
            queued: dict[int, BatchQueued]) -> Response:
    """The batch's answer: `results` holds each order rejected before queueing, `queued`
    the fate of the others."""
    for index, (order_id, client_order_id, duplicate, refused) in queued.items():
        if refused:
            refusal = open_orders_refusal(entry.queue.open_orders_limit)
            results[index] = _rejected(index, [{"loc": [], "msg": refusal.detail,
                                                "type": refusal.reason}])
            results[index]["retryAfter"] = refusal.retry_after
        else:
            results[index] = _QUEUED % (index, order_id, client_order_id,
                                        "true" if duplicate else "false")
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


def _decode_one_by_one(venue: VenueConfig, body: bytes
                       ) -> tuple[list[WireOrder | None], list[str | dict | None]]:
    """The orders of a batch some of which are malformed: those are None, with their
    rejection (venue.api.order_rules' words) in the results."""
    try:
        raws = _decode_body(body).orders
        refuse_repeated_keys(body, levels=1)  # the orders' own are each order's error
    except DECODE_ERRORS as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [{
            "loc": ["body"], "msg": not_json(error, body), "type": "json_invalid"}]) from None
    orders: list[WireOrder | None] = []
    results: list[str | dict | None] = [None] * len(raws)
    for index, raw in enumerate(raws):
        try:
            orders.append(decode_order(raw))
            continue
        except DECODE_ERRORS:
            orders.append(None)
        try:
            errors = new_order(venue, decode_json(raw))
        except DECODE_ERRORS as error:
            errors = json_invalid(not_json(error, bytes(raw)))
        if isinstance(errors, CheckedOrder):  # (the struct and the rules never disagree)
            orders[index] = errors.order
        else:
            results[index] = _rejected(index, errors)
    return orders, results


def _checked(venue: VenueConfig, orders: list[WireOrder | None], results: list,
             shard_lag: ShardLag) -> dict[int, list[tuple[int, CheckedOrder]]]:
    """The good orders by shard, as (index, checked order); each bad or refused one
    gets its rejection in `results`."""
    by_shard: dict[int, list[tuple[int, CheckedOrder]]] = {}
    refusals: dict[int, Refusal | None] = {}
    for index, order in enumerate(orders):
        if order is None:
            continue
        checked = check(venue, order)
        if not isinstance(checked, CheckedOrder):
            results[index] = _rejected(index, order_problem_errors(checked, order))
            continue
        shard = venue.shard_of(checked.instrument)
        if shard not in refusals:
            refusals[shard] = shard_lag.shard_refusal(shard)
        refusal = refusals[shard]
        if refusal is not None:
            results[index] = _rejected(index, [{
                "loc": ["symbol"], "msg": f"{order.symbol}: {refusal.detail}",
                "type": refusal.reason, "input": order.symbol}])
            results[index]["retryAfter"] = refusal.retry_after
            continue
        by_shard.setdefault(shard, []).append((index, checked))
    return by_shard
