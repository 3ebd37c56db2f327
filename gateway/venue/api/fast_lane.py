"""POST /v1/orders in a lane of its own: a well-formed order from a known key is queued
and answered before the request enters the framework.

On a 2-core machine FastAPI's per-request machinery (routing, dependencies, the
exception and exit-stack layers) costs more than everything the venue does for an
order. This ASGI middleware sits outside it and takes only requests it can answer
exactly as the route would: a POST to /v1/orders whose key is in the gateway's key
cache and whose order passes venue.api.order_rules' checks. Anything else (an unknown
key, a bad order, a full shard) goes on to the route with its body replayed, so every
error is answered, worded and counted in one place. The route stays the documented one.
"""

from __future__ import annotations

import time

import msgspec
import redis.exceptions
from starlette.types import ASGIApp, Receive, Scope, Send

from venue.api.body_limit import read_body, replayed
from venue.api.error_handlers import queue_refusal
from venue.api.order_entry import ShardBusy
from venue.api.order_rules import DECODE_ERRORS, CheckedOrder, check, decode_order
from venue.api.order_wire import accepted_json
from venue.api.trace_context import traceparent_of
from venue.metrics import REQUEST_LATENCY

PATH = "/v1/orders"
# An order is a few hundred bytes; a body larger than this is the route's to refuse.
MAX_BODY = 64 * 1024
_JSON = (b"content-type", b"application/json")
_TIMING = REQUEST_LATENCY.labels("POST", "submit_order")  # the route's own label
_QUEUE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                 redis.exceptions.OutOfMemoryError)


class OrderFastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST"
                or scope["query_string"]):  # the route refuses query parameters
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body, complete = await read_body(receive, MAX_BODY)
        state = scope["app"].state
        account_id = _cached_account(scope, state) if complete else None
        checked = None
        if account_id is not None:
            try:
                checked = check(state.venue, decode_order(body))
            except DECODE_ERRORS:
                pass
        if not isinstance(checked, CheckedOrder):
            await self.app(scope, replayed(body, complete, receive), send)
            return
        try:
            enqueued, client_order_id = await state.order_entry.submit(
                checked, account_id, traceparent_of(_header(scope, b"traceparent")))
        except ShardBusy:  # nothing was queued: the route answers 429 and counts it
            await self.app(scope, replayed(body, complete, receive), send)
            return
        except _QUEUE_ERRORS as error:
            headers, answer = queue_refusal(error)
            await _answer(send, 503, msgspec.json.encode(answer), headers)
        else:
            await _answer(send, 202, accepted_json(enqueued.order_id, client_order_id,
                                                   enqueued.duplicate))
        _TIMING.observe(time.perf_counter() - started)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _cached_account(scope: Scope, state) -> int | None:
    """The account of the request's API key when the gateway knows the key already."""
    authorization = _header(scope, b"authorization")
    if authorization is None:
        return None
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    return state.api_keys.cached(key)


async def _answer(send: Send, status: int, body: bytes,
                  headers: dict[str, str] | None = None) -> None:
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [_JSON, (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})
