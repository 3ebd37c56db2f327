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

Nothing is set or timed per request: one timer of the process looks at each of its
connections every SWEEP_S, at what uvicorn's own state says it waits for (a head, or the
rest of a body), and cuts one found waiting for the same thing for too long; so a
deadline holds to within SWEEP_S. (Timing each request cost the single-order path about
4% of its throughput.)

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
        timeouts = _timeouts()
        for protocol in tuple(self.protocols):
            protocol.check(now, timeouts)
        if self.protocols:
            self.timer = self.loop.call_later(SWEEP_S, self.sweep)


_SWEEPS: WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweep] = WeakKeyDictionary()


class DeadlineProtocol(HttpToolsProtocol):
    # What the connection was last found waiting for: the head of a request after the
    # exchange `cycle` (None: the first), or the rest of the body of `cycle`'s request;
    # and since when.
    _part: str | None = _HEAD
    _cycle: object = None
    _since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sweep = _SWEEPS.get(self.loop)
        if sweep is None:
            sweep = _SWEEPS[self.loop] = _Sweep(self.loop)
        self._sweep = sweep
        self._since = self.loop.time()
        sweep.watch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._sweep.protocols.discard(self)
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._sweep.protocols.discard(self)
        super().handle_websocket_upgrade()

    def check(self, now: float, timeouts: dict[str, float]) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.more_body:  # (answered or not)
            part: str | None = _BODY
        elif cycle is None or cycle.response_complete:
            part = _HEAD
        else:
            part = None  # the request is in, and being answered: not timed
        if part != self._part or cycle is not self._cycle:
            self._part, self._cycle, self._since = part, cycle, now
        elif part is not None and now - self._since >= timeouts[part]:
            self.expire(part, timeouts[part])

    def expire(self, part: str, seconds: float) -> None:
        self._part = None
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle
        # A request was begun: its body is due, or the parser began another scope than
        # the last exchange's.
        if part == _BODY or self.scope is not (cycle.scope if cycle is not None else None):
            HTTP_REFUSED.labels(REASON).inc()
            if part == _HEAD or not (cycle.response_started or self.pipeline):
                transport.write(timed_out(part, seconds))
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True  # the app's receive() says the client left
                cycle.message_event.set()
        transport.close()
