"""The order gateway's ASGI application.

Run with `uvicorn.run("venue.api.app:create_app", factory=True, loop="uvloop",
http="httptools")`; the lifespan owns the process's one Redis client, one Postgres
pool and one OrderQueue.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.metadata import version

import asyncpg
import redis.exceptions
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from redis.asyncio import Redis
from redis.utils import HIREDIS_AVAILABLE

from venue import telemetry
from venue.metrics import worker_exited
from venue.api.auth import ApiKeyCache
from venue.api.body_limit import BodyLimit, body_limit
from venue.api.collector import SurvivorFreezer
from venue.api.deps import authenticated_account
from venue.api.engines import EngineChannels
from venue.api.limits import AccountLimits
from venue.api.error_handlers import add_order_entry_handlers, queue_refusal
from venue.api.fast_lane import OrderFastLane
from venue.api.openapi import add_request_schemas
from venue.api.page import mount_page
from venue.api.parameters import STRICT_QUERY
from venue.api.order_entry import OrderEntry
from venue.api.report_feed import ReportFeed
from venue.market.feed import MarketFeed
from venue.market.socket import ExposeTransport, MarketLane
from venue.api.request_timing import RequestTiming
from venue.api.routes import (batch, books, candles, health, instruments, metrics, orders,
                               trades)
from venue.api.routes import websocket
from venue.api.shard_lag import ShardLag
from venue.contract.config import Settings
from venue.queue.claims import ClaimWindow
from venue.queue.order_queue import OrderQueue

log = logging.getLogger(__name__)

DB_POOL_MAX_SIZE = 16
DB_COMMAND_TIMEOUT_S = 10.0
REDIS_TIMEOUT_S = 5.0
UNAUTHORIZED = {401: {"description": "Missing, unknown or revoked API key"}}

DESCRIPTION = """\
Order entry and order status for the tradingvenue matching engine.

* Every `/v1` route needs `Authorization: Bearer <API key>`.
* Prices and quantities are **decimal strings** on the instrument's tick and lot grid
  (see `GET /v1/instruments`); a value off the grid is rejected, never rounded.
* `POST /v1/orders` answers `202` once the order is durably queued; the engine's verdict
  appears at `GET /v1/orders/{orderId}`.
* Bad input gets `422` with the field and the reason, and changes nothing.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if not settings.redis_url:
        raise RuntimeError("the gateway needs REDIS_URL")
    if not settings.database_url:
        raise RuntimeError("the gateway needs DATABASE_URL")
    if not HIREDIS_AVAILABLE:
        log.warning("hiredis is not installed; Redis replies are parsed in pure Python")
    async with AsyncExitStack() as stack:
        if telemetry.setup(telemetry.GATEWAY):  # each worker process its own exporter
            stack.callback(telemetry.shutdown)
        stack.callback(worker_exited, os.getpid())
        # redis-py picks the hiredis parser by itself when hiredis is installed. A Redis
        # that stops answering fails requests with 503 instead of holding them forever.
        client = Redis.from_url(settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S,
                                socket_timeout=REDIS_TIMEOUT_S)
        stack.push_async_callback(client.aclose)
        db = await asyncpg.create_pool(settings.database_url, min_size=1,
                                       max_size=DB_POOL_MAX_SIZE,
                                       command_timeout=DB_COMMAND_TIMEOUT_S)
        stack.push_async_callback(db.close)
        app.state.redis = client
        app.state.db = db
        app.state.order_queue = OrderQueue(client, app.state.venue,
                                           ClaimWindow(settings.dedup_window_s),
                                           settings.account_open_orders)
        app.state.api_keys = ApiKeyCache(db, ttl_s=settings.key_cache_ttl_s)
        app.state.shard_lag = ShardLag(client, app.state.venue, settings.shard_lag_limit,
                                         unpersisted_limit=settings.unpersisted_limit)
        app.state.limits = AccountLimits.share(
            settings.account_orders_per_s, settings.account_burst,
            settings.account_ws_connections, settings.gateway_workers)
        app.state.order_entry = OrderEntry(app.state.order_queue, db, app.state.shard_lag,
                                           app.state.limits)
        app.state.engines = EngineChannels(settings)
        stack.push_async_callback(app.state.engines.close)
        app.state.report_feed = ReportFeed(client, app.state.venue, app.state.engines)
        stack.push_async_callback(app.state.report_feed.close)
        app.state.market_feed = MarketFeed(app.state.venue, app.state.engines)
        stack.push_async_callback(app.state.market_feed.close)
        # Backpressure and the queue-depth gauges: sampled here, never per request.
        app.state.shard_lag.start()
        stack.push_async_callback(app.state.shard_lag.close)
        # Start-up's objects, and from now on each full collection's survivors, out of
        # the cyclic collector's scans (venue.api.collector).
        freezer = SurvivorFreezer()
        freezer.start()
        stack.push_async_callback(freezer.close)
        yield


async def _queue_unavailable(request: Request, error: Exception) -> JSONResponse:
    headers, body = queue_refusal(error)
    return JSONResponse(status_code=503, headers=headers, content=body)


async def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={
        "detail": f"database unavailable ({type(error).__name__})"})


async def _client_left(request: Request, error: Exception) -> Response:
    # The client went away with its body half sent: nothing was done, and no one hears
    # an answer (nginx's 499). Not an error of the gateway's.
    return Response(status_code=499)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(title="tradingvenue order gateway", description=DESCRIPTION,
                  version=version("tradingvenue"), lifespan=lifespan)
    app.state.settings = settings
    app.state.venue = settings.venue()

    # The order routers authenticate (they take the account as a parameter); market data
    # (instruments, books, trades, candles, and the /v1/market feed, served by MarketLane)
    # is public and read-only.
    # Routers are included flat: a nesting level costs every request another route match.
    app.include_router(health.router)
    # Authenticated before their query is looked at: a request without a key is 401,
    # whatever else is wrong with it (the route's own use of the key is the same call's).
    for order_routes in (batch.router, orders.router):
        app.include_router(order_routes, prefix="/v1", responses=UNAUTHORIZED,
                           dependencies=[Depends(authenticated_account), *STRICT_QUERY])
    for market_data in (instruments.router, books.router, trades.router, candles.router):
        app.include_router(market_data, prefix="/v1", dependencies=STRICT_QUERY)
    app.include_router(websocket.router, prefix="/v1")  # authenticates in the socket
    app.include_router(metrics.router)
    mount_page(app)  # the page at / and its assets at /assets/
    add_order_entry_handlers(app)
    add_request_schemas(app)
    app.add_middleware(RequestTiming)
    app.add_middleware(OrderFastLane)  # its orders skip the rest
    app.add_middleware(MarketLane)  # /v1/market's sockets skip the rest
    app.add_middleware(BodyLimit, limit=body_limit(settings.batch_max_orders))
    app.add_middleware(ExposeTransport)  # outermost: it sees the server's own send

    for error in (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                  redis.exceptions.OutOfMemoryError):
        app.add_exception_handler(error, _queue_unavailable)
    for error in (asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                  asyncpg.TooManyConnectionsError, ConnectionError, TimeoutError):
        app.add_exception_handler(error, _database_unavailable)
    app.add_exception_handler(ClientDisconnect, _client_left)
    return app
