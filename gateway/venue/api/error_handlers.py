"""HTTP answers for the order-entry errors, and the count of refused orders.

The routes raise what went wrong (venue.api.order_entry's exceptions, FastAPI's
RequestValidationError); these turn it into the status code and body a client reads.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from venue.api.engines import EngineUnavailable
from venue.api.request_spans import record_refusal
from venue.api.trace_context import is_valid_traceparent
from venue.api.order_entry import OrderClosed, OrderNotFound, ShardBusy
from venue.api.order_rules import MESSAGE_CHARACTERS, RequestRejected, at, echoed
from venue.metrics import CHANNEL_HTTP, ORDERS_REJECTED

_ORDERS_PATH = "/v1/orders"


# A Redis at its maxmemory (noeviction) refuses writes until the writer frees some.
QUEUE_FULL_RETRY_AFTER_S = 5


def queue_refusal(error: Exception) -> tuple[dict[str, str], dict[str, Any]]:
    """The 503's headers and body for a Redis error met while queueing: a full queue
    (Redis refused the write: nothing was queued) says so and when to come back."""
    if isinstance(error, redis.exceptions.OutOfMemoryError):
        return ({"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
                {"detail": "the order queue is full (Redis is at its memory limit); nothing "
                           "was queued: retry after Retry-After seconds",
                 "reason": "queue_full", "retryAfter": QUEUE_FULL_RETRY_AFTER_S})
    # On a timeout the order may have been queued after all; its clientOrderId tells.
    return {}, {"detail": f"order queue unavailable ({type(error).__name__}); retry with the "
                          "same clientOrderId to avoid a second order",
                "reason": "queue_unavailable"}


def _is_new_order(request: Request) -> bool:
    return request.method == "POST" and request.url.path == _ORDERS_PATH


def _recorded(request: Request, status_code: int, reason: str) -> None:
    """A refused order request's span, whatever the sampling ratio (venue.telemetry)."""
    traceparent = request.headers.get("traceparent")
    record_refusal(traceparent if traceparent and is_valid_traceparent(traceparent) else None,
                   CHANNEL_HTTP, status_code, reason, path=request.url.path,
                   method=request.method)


async def _invalid(request: Request, error: RequestValidationError) -> Response:
    errors = error.errors()
    if _is_new_order(request):
        reason = errors[0].get("type", "invalid") if errors else "invalid"
        ORDERS_REJECTED.labels(channel=CHANNEL_HTTP, reason=reason).inc()
        _recorded(request, status.HTTP_422_UNPROCESSABLE_CONTENT, reason)
    # FastAPI's own (a path or query parameter's) echo as much as ours do.
    return await request_validation_exception_handler(request, RequestValidationError(
        [e | {"input": echoed(e.get("input")),
              "msg": echoed(e.get("msg"), MESSAGE_CHARACTERS)} for e in errors]))


async def _rejected(request: Request, error: RequestRejected) -> Response:
    """A request that breaks a rule (venue.api.order_rules): 422, each error's loc in
    the body, as FastAPI words its own."""
    return await _invalid(request, RequestValidationError(at(("body",), error.errors)))


async def _shard_busy(request: Request, error: ShardBusy) -> JSONResponse:
    ORDERS_REJECTED.labels(channel=CHANNEL_HTTP, reason=error.reason).inc()
    _recorded(request, status.HTTP_429_TOO_MANY_REQUESTS, error.reason)
    return JSONResponse(status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                        headers={"Retry-After": str(error.retry_after)},
                        content={"detail": str(error), "reason": error.reason,
                                 "shard": error.shard, "retryAfter": error.retry_after})


async def _not_found(request: Request, error: OrderNotFound) -> JSONResponse:
    return JSONResponse(status_code=status.HTTP_404_NOT_FOUND,
                        content={"detail": str(error), "reason": error.reason})


async def _closed(request: Request, error: OrderClosed) -> JSONResponse:
    # A cancel-reject as the engine words one: the order's real status, and why.
    _recorded(request, status.HTTP_409_CONFLICT, error.reason)
    return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={
        "detail": str(error), "orderId": str(error.order_id),
        "clientOrderId": error.client_order_id, "status": error.status,
        "reason": error.reason})


async def _engine_unavailable(request: Request, error: EngineUnavailable) -> JSONResponse:
    _recorded(request, status.HTTP_503_SERVICE_UNAVAILABLE, "engine_unavailable")
    return JSONResponse(status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                        content={"detail": str(error)})


def add_order_entry_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(RequestRejected, _rejected)
    app.add_exception_handler(ShardBusy, _shard_busy)
    app.add_exception_handler(OrderNotFound, _not_found)
    app.add_exception_handler(OrderClosed, _closed)
    app.add_exception_handler(EngineUnavailable, _engine_unavailable)
