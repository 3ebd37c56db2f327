"""One /v1/market WebSocket: its subscriptions, what it asks, and its bounded buffer.

Messages in (README.md, "Market data"):
    {"type": "subscribe", "channel": "book", "symbol": S, "depth": 10, "interval": 0}
    {"type": "subscribe", "channel": "trades", "symbol": S}
    {"type": "unsubscribe", "channel": C, "symbol": S}
    {"type": "resync", "channel": C, "symbol": S, "from": SEQ}  (no "from": a snapshot)
A message that is not one of these (a field none of these has included; null is a field
left out) is answered {"type": "error", "field", "message"} and changes nothing. Messages
out come from the subscriptions' views (venue.market.feed), heartbeats included. A
socket with no subscription for `market_subscribe_within_s` (from its opening, or from its
last unsubscribe) is closed, 1008: it would hold a connection of the gateway's for
nothing. A process serves at most `market_sockets` (one more is closed at once, 1013):
a client opening sockets by the thousand took every file descriptor of the gateway's, and
order entry with them. And at most `market_sockets_per_address` from one client address
(the one a trusted proxy's X-Forwarded-For names: uvicorn's FORWARDED_ALLOW_IPS), so
that one client cannot take them all, nor the fan-out's CPU: each socket subscribed to a
book is one more write for every update.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from weakref import WeakKeyDictionary

import msgspec
from fastapi import WebSocket, status

from redis.exceptions import RedisError

from venue.api.engines import EngineUnavailable
from venue.api.http_protocol import hand_over, open_files_share
from venue.api.parameters import refused_query
from venue.api.order_rules import (DECODE_ERRORS, MESSAGE_CHARACTERS, decode_json, echoed,
                                   not_json)
from venue.api.websocket_io import Outbox, received_texts
from venue.contract.config import Settings, VenueConfig
from venue.market.feed import MarketFeed, View
from venue.market.frames import close_frame, text_frame
from venue.metrics import HTTP_REFUSED, MARKET_CONNECTIONS, MARKET_SLOW_CONSUMERS

log = logging.getLogger(__name__)

# What may wait for a socket that does not read; past this (or Settings'
# market_buffer_bytes) it is closed (1013).
OUTBOX_LIMIT = 4096  # messages, when it is written through the ASGI server
PENDING_LIMIT = 256  # frames held for one write, at most
CLOSE_WAIT_S = 10.0  # how long a closed slow consumer has to read its close frame
TRANSPORT = "venue.transport"  # the scope key of ExposeTransport
PATH = "/v1/market"
_TRANSPORT_METHODS = ("write", "get_write_buffer_size", "is_closing", "abort")
MAX_SUBSCRIPTIONS = 64
TOO_MANY_SOCKETS = "market_sockets"  # a socket refused: the process has its most open
TOO_MANY_FROM_ADDRESS = "market_sockets_per_address"  # ... or has its most from the address
# The depths and conflation intervals a subscription may ask for: a bounded number of
# views per symbol, whatever the public asks.
DEPTHS = (1, 2, 5, 10, 20, 50, 100, 500, 1000, 0)
INTERVALS_MS = (0, 10, 20, 50, 100, 250, 500, 1000, 2000, 5000)
# Snapshots and resyncs a socket may ask for (a subscribe, or any resync): a snapshot is
# the whole book (made once for each state of its view, View.snapshot: 13 ms for 10,000
# levels), and a resync the view's memory answers up to RETAINED messages, so a client
# that asks for thousands fills the gateway's buffers and holds its loop back for every
# other (a resync from memory was free: 65 KB asked for 171 MB). A token bucket per
# socket; past it, an error naming `type`, and nothing sent. A client that follows the
# resync rules (README.md) asks for one a second at most.
SNAPSHOTS_PER_S = 10.0
SNAPSHOT_BURST = 20.0
CHANNELS = ("book", "trades")
_encode = msgspec.json.Encoder().encode


class ExposeTransport:
    """ASGI middleware: puts a WebSocket's connection (the server's asyncio transport,
    when the server is uvicorn) in its scope, so the feed writes each message's frame,
    made once, to each subscriber's connection: a message for a thousand subscribers is
    a thousand buffer appends, not a thousand trips through the server's protocol and
    its per-connection compression. Frames written this way are uncompressed, which
    permessage-deflate allows (RFC 7692, 6); the server still writes its own control
    frames, whole, to the same transport."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            # asyncio's transports, or uvloop's (which do not subclass them).
            if all(callable(getattr(transport, name, None)) for name in _TRANSPORT_METHODS):
                scope[TRANSPORT] = transport
        await self.app(scope, receive, send)


class MarketLane:
    """ASGI middleware, inside ExposeTransport: a /v1/market WebSocket is served here, past
    the rest of the stack (routing, dependencies, exception handlers, request timing:
    nothing of it is for a public feed's socket). Each frame of the stack stays open for
    as long as the socket does, an object for the cyclic collector to scan with the rest:
    with a thousand subscribers, the stack's were most of what a full collection went
    through, holding the event loop each time."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        websocket = WebSocket(scope, receive, send)
        if await refused_query(websocket):
            return
        await MarketSocket(websocket, state.market_feed, state.venue, state.settings).serve()


# Per event loop, the sockets with frames to write at the end of the loop's turn: one
# callback writes them all (one each cost a message's fan-out more than its writes).
_TURN_WRITES: WeakKeyDictionary[asyncio.AbstractEventLoop, list[MarketSocket]] = \
    WeakKeyDictionary()


def _write_at_end_of_turn(socket: MarketSocket) -> None:
    loop = asyncio.get_running_loop()
    sockets = _TURN_WRITES.get(loop)
    if sockets is None:
        sockets = _TURN_WRITES[loop] = []
    if not sockets:
        loop.call_soon(_write_turn, sockets)
    sockets.append(socket)


def _write_turn(sockets: list[MarketSocket]) -> None:
    ready = sockets[:]
    sockets.clear()
    for socket in ready:
        try:
            socket._flush()
        except Exception:  # noqa: BLE001 - one connection's failure is not the others'
            log.exception("market feed: a write to a subscriber failed; its frames dropped")
            socket._pending.clear()


class Refused(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# The fields of each message, by its type and channel.
_FIELDS = {("subscribe", "book"): ("type", "channel", "symbol", "depth", "interval"),
           ("subscribe", "trades"): ("type", "channel", "symbol"),
           ("unsubscribe", "book"): ("type", "channel", "symbol"),
           ("unsubscribe", "trades"): ("type", "channel", "symbol"),
           ("resync", "book"): ("type", "channel", "symbol", "from"),
           ("resync", "trades"): ("type", "channel", "symbol", "from")}


def _integer(message: dict[str, Any], field: str, default: int, low: int, high: int) -> int:
    value = message.get(field)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(field, f"{field} must be an integer")
    if not low <= value <= high:
        raise Refused(field, f"{field} must be between {low} and {high}")
    return value


def _choice(message: dict[str, Any], field: str, default: int, allowed: tuple[int, ...]) -> int:
    value = message.get(field)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise Refused(field, f"{field} must be one of {', '.join(map(str, allowed))}")
    return value


def fitted_market_sockets(wanted: int) -> int:
    """`wanted` (settings.market_sockets), or half of this process's file descriptors when
    that is fewer, said once: the other half is order entry's, however many market
    sockets are opened (a process started with the common soft limit of 1,024 served
    order entry nothing once a client held a thousand)."""
    return open_files_share("market sockets", wanted, 2)


class MarketSocket:
    def __init__(self, websocket: WebSocket, feed: MarketFeed, venue: VenueConfig,
                 settings: Settings) -> None:
        self.websocket = websocket
        self.feed = feed
        self.venue = venue
        self.subscribe_within_s = settings.market_subscribe_within_s
        self.most_sockets = fitted_market_sockets(settings.market_sockets)
        self.most_per_address = settings.market_sockets_per_address
        self.subscriptions: dict[tuple[str, str], View] = {}
        # Through the ASGI server when the connection is not at hand.
        self.buffer_limit = settings.market_buffer_bytes
        self._outbox = Outbox(websocket, OUTBOX_LIMIT, self.buffer_limit, "slow consumer: "
                              f"over {OUTBOX_LIMIT} messages or {self.buffer_limit >> 10} KiB "
                              "behind", MARKET_SLOW_CONSUMERS.inc)
        self._closing = False
        self._transport: asyncio.WriteTransport | None = None
        self._pending: list[bytes] = []  # frames for the connection, this loop turn
        self._snapshot_tokens, self._snapshot_at = SNAPSHOT_BURST, time.monotonic()

    async def serve(self) -> None:
        await self.websocket.accept()
        client = self.websocket.scope.get("client")
        address = client[0] if client else ""
        by_address = self.feed.sockets_by_address
        if self.feed.sockets >= self.most_sockets:
            await self._refuse(TOO_MANY_SOCKETS, "this gateway has its most market sockets "
                               f"open ({self.most_sockets}): try again later")
            return
        if by_address[address] >= self.most_per_address:
            await self._refuse(TOO_MANY_FROM_ADDRESS, "this gateway has its most market "
                               f"sockets open from your address ({self.most_per_address}): "
                               "close one, or subscribe to more on one socket")
            return
        self.feed.sockets += 1
        by_address[address] += 1
        # Written to directly once accepted (and the handshake's answer is out).
        self._transport = self.websocket.scope.get(TRANSPORT)
        if self._transport is not None:  # counted here now, not as an HTTP connection
            hand_over(self._transport)
        MARKET_CONNECTIONS.inc()
        tasks = [] if self._transport is not None else [asyncio.create_task(self._outbox.run())]
        texts = received_texts(self.websocket)
        loop = asyncio.get_running_loop()
        idle_since = loop.time()  # the socket has had no subscription since
        try:
            while True:
                if self.subscriptions:
                    text = await anext(texts, None)
                else:
                    left = idle_since + self.subscribe_within_s - loop.time()
                    try:
                        text = await asyncio.wait_for(anext(texts, None), max(left, 0))
                    except TimeoutError:
                        await self._close_idle()
                        return
                if text is None:  # the client left
                    return
                subscribed = bool(self.subscriptions)
                await self._handle(text)
                if subscribed and not self.subscriptions:
                    idle_since = loop.time()
        finally:
            for view in self.subscriptions.values():
                self.feed.leave(view, self)
            self.subscriptions.clear()
            self.feed.sockets -= 1
            by_address[address] -= 1
            if not by_address[address]:
                del by_address[address]
            MARKET_CONNECTIONS.dec()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _refuse(self, reason: str, message: str) -> None:
        HTTP_REFUSED.labels(reason).inc()
        await self.websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason=message)

    async def _close_idle(self) -> None:
        """No subscription for `subscribe_within_s`: the socket is closed (1008), after
        what it was sent (the answers to what it asked meanwhile)."""
        if self._transport is not None:
            self._flush()
        self._closing = True
        await self.websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=(
            f"no subscription for {self.subscribe_within_s:g} s: a market socket subscribes "
            "or is closed"))

    # --- messages in -------------------------------------------------------------------

    async def _handle(self, text: str) -> None:
        try:
            try:
                message = decode_json(text)
            except DECODE_ERRORS as error:
                raise Refused("message", not_json(error, text)) from None
            if not isinstance(message, dict):
                raise Refused("message", "a message is a JSON object")
            kind = message.get("type")
            if kind not in ("subscribe", "unsubscribe", "resync"):
                raise Refused("type", "type must be subscribe, unsubscribe or resync")
            channel = message.get("channel")
            if channel not in CHANNELS:
                raise Refused("channel", "channel must be book or trades")
            fields = _FIELDS[kind, channel]
            for name in message:
                if name not in fields:
                    raise Refused(name, f"unknown field {name!r}: a {kind} of {channel} has "
                                        f"{', '.join(fields)}")
            symbol = message.get("symbol")
            if not isinstance(symbol, str):
                raise Refused("symbol", "symbol is required: one of GET /v1/instruments")
            instrument = self.venue.by_symbol.get(symbol)
            if instrument is None:
                raise Refused("symbol", f"symbol {symbol!r} is not traded here")
            key = (channel, instrument.symbol)
            if kind == "subscribe":
                await self._subscribe(key, instrument, message)
            elif kind == "unsubscribe":
                view = self.subscriptions.pop(key, None)
                if view is not None:
                    self.feed.leave(view, self)
                self.push(_encode({"type": "unsubscribed", "channel": channel,
                                   "symbol": instrument.symbol}).decode())
            else:
                since = (None if message.get("from") is None
                         else _integer(message, "from", 0, 0, 2**63 - 1))
                view = self.subscriptions.get(key)
                if view is None:
                    raise Refused("symbol", f"not subscribed to {channel} of {symbol}")
                self._take_snapshot()
                missed = None if since is None else view.missed_since(since)
                if missed is None:
                    self.push(*view.snapshot())
                for text in missed or ():
                    self.push(text)
        except Refused as refused:
            self.push(_encode({"type": "error", "field": echoed(refused.field),
                               "message": echoed(refused.message, MESSAGE_CHARACTERS)}).decode())

    async def _subscribe(self, key: tuple[str, str], instrument, message: dict) -> None:
        channel = key[0]
        if key not in self.subscriptions and len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise Refused("symbol", f"at most {MAX_SUBSCRIPTIONS} subscriptions a socket")
        if channel == "book":
            depth = _choice(message, "depth", 10, DEPTHS)
            interval = _choice(message, "interval", 0, INTERVALS_MS)
        self._take_snapshot()  # a good request: it will be answered with one
        try:
            if channel == "book":
                view = await self.feed.book_view(instrument, depth, interval)
                said = {"depth": depth, "interval": interval}
            else:
                view = await self.feed.trade_view(instrument)
                said = {}
        except (EngineUnavailable, TimeoutError, RedisError, OSError) as error:
            self.feed.release_if_idle()
            raise Refused("symbol", f"the market data of {instrument.symbol} is not available "
                                    f"({error or 'timed out'}); try again") from None
        # No await from here on: the snapshot and the member's first update follow each
        # other with nothing between.
        self.push(_encode({"type": "subscribed", "channel": channel,
                           "symbol": instrument.symbol, **said}).decode())
        self.push(*view.snapshot())
        view.members.add(self)  # a member of the new view before leaving the old one
        old = self.subscriptions.get(key)
        self.subscriptions[key] = view
        if old is not None and old is not view:
            self.feed.leave(old, self)

    def _take_snapshot(self) -> None:
        """Count a snapshot against the socket's bucket, or refuse it."""
        now = time.monotonic()
        self._snapshot_tokens = min(SNAPSHOT_BURST, self._snapshot_tokens
                                    + (now - self._snapshot_at) * SNAPSHOTS_PER_S)
        self._snapshot_at = now
        if self._snapshot_tokens < 1:
            raise Refused("type", f"too many snapshots and resyncs: at most "
                                  f"{SNAPSHOTS_PER_S:g} a second "
                                  f"a socket (bursts of {SNAPSHOT_BURST:g}); ask again in "
                                  f"{(1 - self._snapshot_tokens) / SNAPSHOTS_PER_S:.1f} s")
        self._snapshot_tokens -= 1

    # --- messages out ------------------------------------------------------------------

    def push(self, text: str, frame: bytes | None = None) -> None:
        """Sends a message, after those before it; never waits. Frames written to the
        connection itself go out together at the end of the event loop's turn: the
        messages of every batch from the engine handled in that turn, in one write."""
        if self._closing:
            return
        if self._transport is not None:
            pending = self._pending
            pending.append(frame or text_frame(text.encode()))
            if len(pending) == 1:
                _write_at_end_of_turn(self)
            elif len(pending) >= PENDING_LIMIT:
                self._flush()  # the turn's callback finds nothing left, or the rest
            return
        self._outbox.put(text)

    def _flush(self) -> None:
        transport, pending = self._transport, self._pending
        if not pending:
            return
        if self._closing or transport.is_closing():
            pending.clear()
        elif transport.get_write_buffer_size() > self.buffer_limit:
            pending.clear()
            self._cut_off(transport)
        else:
            transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
            pending.clear()

    def _cut_off(self, transport: asyncio.WriteTransport) -> None:
        """A slow consumer: the close frame after what it has yet to read, and the
        connection dropped if it has not read that much within CLOSE_WAIT_S."""
        self._closing = True
        MARKET_SLOW_CONSUMERS.inc()
        transport.write(close_frame(status.WS_1013_TRY_AGAIN_LATER,
                                     f"slow consumer: over {self.buffer_limit >> 10} KiB "
                                     "behind"))
        asyncio.get_running_loop().call_later(CLOSE_WAIT_S, transport.abort)
