"""The gateway's HTTP/1.1 connections: uvicorn's (httptools) protocol, with deadlines for
receiving a request, which uvicorn has none of (github.com/Kludex/uvicorn/issues/157):
its keep-alive timeout ends with the first byte of the next request, so a client that
opened connections and sent nothing, or sent a head or a body a byte at a time
(slowloris), held each connection, and a file descriptor of the gateway's, for good.

- A request's head must be in whole within `request_head_timeout_s` (10 s) of the
  connection's opening, or of the answer to the request before it.
- Its body must be in whole within `request_body_timeout_s` (30 s) of its head.

Past either, the connection is closed: a request begun and not answered yet is answered
first, 408 `request_timeout` (counted in venue_http_refused); a connection that began
nothing is closed quietly, as uvicorn's keep-alive timeout closes one between requests.
Once a request is in, nothing is timed: its answer takes what it takes. An upgrade to a
WebSocket ends the deadlines (the sockets have their own: the order socket's
authentication, and both sockets' pings).

The deadlines are floats each request sets; one timer of the process goes over its
connections every SWEEP_S, so a deadline holds to within that.

Run with `uvicorn.run(..., http=PROTOCOL)`.
"""

from __future__ import annotations

import asyncio
import functools
from weakref import WeakKeyDictionary

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from venue.contract.config import Settings
from venue.metrics import HTTP_REFUSED

PROTOCOL = "venue.api.http_deadlines:DeadlineProtocol"
SWEEP_S = 0.5
REASON = "request_timeout"
_HEAD, _BODY = "head", "body"


@functools.cache
def _timeouts() -> dict[str, float]:
    """This process's deadlines, by what is being received (Settings, from the
    environment, as the app's own)."""
    settings = Settings()
    return {_HEAD: settings.request_head_timeout_s, _BODY: settings.request_body_timeout_s}


def timed_out(part: str, seconds: float) -> bytes:
    """The 408 a request whose `part` (head or body) was not in within `seconds` gets,
    the connection closed after it."""
    body = msgspec.json.encode({
        "detail": f"the request's {part} was not received whole within {seconds:g} s",
        "reason": REASON})
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))


class _Sweep:
    """The connections of one event loop with a deadline to keep, and its one timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.protocols: set[DeadlineProtocol] = set()
        self.timer: asyncio.TimerHandle | None = None

    def watch(self, protocol: DeadlineProtocol) -> None:
        self.protocols.add(protocol)
        if self.timer is None:
            self.timer = self.loop.call_later(SWEEP_S, self.sweep)

    def sweep(self) -> None:
        self.timer = None
        now = self.loop.time()
        for protocol in tuple(self.protocols):
            if protocol.deadline is not None and protocol.deadline <= now:
                protocol.expire()
        if self.protocols:
            self.timer = self.loop.call_later(SWEEP_S, self.sweep)


_SWEEPS: WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweep] = WeakKeyDictionary()


class DeadlineProtocol(HttpToolsProtocol):
    deadline: float | None = None  # the loop time by which `receiving` must be in
    receiving = _HEAD
    begun = False  # some of a request is in, not all of it

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sweep = _SWEEPS.get(self.loop)
        if sweep is None:
            sweep = _SWEEPS[self.loop] = _Sweep(self.loop)
        self._sweep = sweep
        self._expect(_HEAD)
        sweep.watch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sweep.protocols.discard(self)
        super().connection_lost(exc)

    def _expect(self, part: str) -> None:
        self.receiving = part
        self.deadline = self.loop.time() + _timeouts()[part]

    # The parser's callbacks, each after uvicorn's own.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.begun = True

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._expect(_BODY)  # (an upgrade's is dropped with the deadlines at once)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.begun = False
        self.deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Unless the next request is in already, or the body of this one is still coming
        # (it was answered before it was read: 401, 413): the next head's turn.
        if self.deadline is None and not self.pipeline and not self.transport.is_closing():
            self._expect(_HEAD)

    def handle_websocket_upgrade(self) -> None:
        self.deadline = None
        self._sweep.protocols.discard(self)
        super().handle_websocket_upgrade()

    def expire(self) -> None:
        part, self.deadline = self.receiving, None
        transport = self.transport
        if transport.is_closing():
            return
        if part == _BODY or self.begun:
            HTTP_REFUSED.labels(REASON).inc()
            cycle = self.cycle
            unanswered = part == _HEAD or not (cycle.response_started or self.pipeline)
            if unanswered:
                transport.write(timed_out(part, _timeouts()[part]))
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True  # the app's receive() says the client left
                cycle.message_event.set()
        transport.close()
