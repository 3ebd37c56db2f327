"""The gateway's HTTP/1.1 connections: uvicorn's (httptools) protocol, with a limit on a
request's head and deadlines for receiving a request, which uvicorn has neither of.

A request's head (its line and headers) is at most HEAD_BYTES: past it the connection is
answered 431 `head_too_large` and closed, what else comes dropped unread. Neither uvicorn
nor httptools bounds it, and each copies all it has of a URL or a header value each time
more of it comes: a client sending a never-ending URL or header kept a core busy for as
long as the connection lasted, and ten million small headers took 800 MB. So what is read
of a head is counted as it comes, and refused once over while the head is not whole; and
a head that came whole within a read or two (never over while unfinished), or began in a
read the count did not see whole (the end of a body, or of the request before it), is
measured once whole: its URL, and its headers' names and values (the blanks around a
value, which the parser skips and keeps nothing of, are not counted). Requests before it
on the connection (pipelined) are answered first, then the 431.

Deadlines: uvicorn's keep-alive timeout ends with the first byte of the next request
(github.com/Kludex/uvicorn/issues/157), so a client that opened connections and sent
nothing, or sent a head or a body a byte at a time (slowloris), held each connection,
and a file descriptor of the gateway's, for good.

- A request's head must be in whole within `request_head_timeout_s` (10 s) of the
  connection's opening, or of the answer to the request before it.
- Its body must be in whole within `request_body_timeout_s` (30 s) of its head.

Past either, the connection is closed: a request begun and not answered yet is answered
first, 408 `request_timeout` (counted in venue_http_refused); a connection that began
nothing is closed quietly, as uvicorn's keep-alive timeout closes one between requests.
Once a request is in, nothing is timed: its answer takes what it takes. An upgrade to a
WebSocket ends the deadlines (the sockets have their own: the order socket's
authentication, the market socket's subscription, and both sockets' pings).

No deadline is set per request: one timer of the process looks at each of its
connections every SWEEP_S, at what uvicorn's own state says it waits for (a head, or the
rest of a body), and cuts one found waiting for the same thing for too long; so a
deadline holds to within SWEEP_S. (A timer set and cleared per request cost the
single-order path about 4% of its throughput.)

Connections: a process keeps at most `http_connections` open (fitted to a quarter of
the files it may open: market sockets take at most half, venue.market.socket) and
`http_connections_per_address` from one client address; past either, a connection's one
request is answered 503 `http_connections` or 429 `connections_per_address` with
Retry-After, and the connection closed. The address is the TCP peer's: a trusted proxy's
(uvicorn's FORWARDED_ALLOW_IPS) are not counted by address, as many clients share them
(the proxy limits its own); they count in the process's. Uvicorn bounded neither: a
client holding connections open (a request every few seconds each keeps them past the
deadlines) could take every file descriptor of the gateway, whose accepts then failed
for everyone.

- The kubelet's probes (GET /healthz, /readyz) are answered past the limits: a pod whose
  connections are all taken, or whose clients come from one address (a Service that
  puts the node's address in theirs), is not restarted for it. Up to PROBE_SLOTS
  connections past the limits wait PROBE_HEAD_S for their request; a probe is answered,
  and closed, anything else refused (an upgrade too). With the slots full, a new one
  takes the slot of the oldest that has sent nothing yet (closed), so connections held
  open and silent keep no probe out (the kubelet sends its request as it connects);
  with none such, it is refused at once.
- A refusal's connection lingers (LINGER_S, reading nothing) for at most LINGERING_MOST
  at a time; past them it is closed once the answer is written, so refused connections
  hold few file descriptors however fast they come.
- A connection upgraded to a WebSocket stays counted until the socket comes under a
  limit of its own (`hand_over`: the market sockets' count, an order socket's account),
  or closes: an order socket not yet authenticated holds one for up to 10 s.

Run with `uvicorn.run(..., http=PROTOCOL, ws=WS_PROTOCOL)`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import weakref
from collections import Counter
from collections.abc import Callable
from weakref import WeakKeyDictionary

import msgspec
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

from venue.contract.config import Settings
from venue.metrics import HTTP_REFUSED

PROTOCOL = "venue.api.http_protocol:GatewayProtocol"
WS_PROTOCOL = "venue.api.http_protocol:GatewayWebSocketProtocol"
SWEEP_S = 0.5
REASON = "request_timeout"
HEAD_BYTES = 32 * 1024
# A connection answered 431 reads, and drops, what still comes for this long before it is
# closed: closed at once on unread bytes it would be reset, the answer perhaps lost.
LINGER_S = 2.0
HEAD_REASON = "head_too_large"
CONNECTIONS_REASON = "http_connections"
PER_ADDRESS_REASON = "connections_per_address"
RETRY_AFTER_S = 1
PROBE_SLOTS = 32
PROBE_HEAD_S = 1.0
PROBE_PATHS = (b"/healthz", b"/readyz")
LINGERING_MOST = 64
_HEAD, _BODY = "head", "body"
# What one header of a head costs beyond its name and value (": " and CRLF).
_HEADER_FRAMING = 4


class _Refused:
    """What stands for the exchange of a request refused at its head: uvicorn's calls
    about its body, and about the connection's end, find it answered."""

    response_complete = True
    more_body = False
    disconnected = False
    scope = None

    def __init__(self) -> None:
        self.message_event = asyncio.Event()


log = logging.getLogger("venue.api.http_protocol")


@functools.cache
def open_files_share(what: str, wanted: int, share: int) -> int:
    """`wanted`, or 1/`share` of this process's file descriptors when that is fewer, said
    once: the rest are for what else the process opens."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or wanted <= soft // share:
        return wanted
    log.warning("%s: at most %d, not %d: this process may open %d files (RLIMIT_NOFILE), "
                "and %s take at most 1/%d of them", what, soft // share, wanted, soft, what,
                share)
    return soft // share


@functools.cache
def _limits() -> tuple[int, int]:
    """This process's most connections, and most from one address (Settings)."""
    settings = Settings()
    return (open_files_share("HTTP connections", settings.http_connections, 4),
            settings.http_connections_per_address)


@functools.cache
def _timeouts() -> dict[str, float]:
    """This process's deadlines, by what is being received (Settings, from the
    environment, as the app's own)."""
    settings = Settings()
    return {_HEAD: settings.request_head_timeout_s, _BODY: settings.request_body_timeout_s}


def _closing_answer(status: bytes, detail: str, reason: str, headers: bytes = b"") -> bytes:
    """An answer the protocol writes itself, the connection closed after it."""
    body = msgspec.json.encode({"detail": detail, "reason": reason})
    return (b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"%sconnection: close\r\n\r\n%s" % (status, len(body), headers, body))


def timed_out(part: str, seconds: float) -> bytes:
    """The 408 a request whose `part` (head or body) was not in within `seconds` gets."""
    return _closing_answer(b"408 Request Timeout", f"the request's {part} was not received "
                           f"whole within {seconds:g} s", REASON)


HEAD_TOO_LARGE = _closing_answer(
    b"431 Request Header Fields Too Large", f"the request's head (its line and headers) is "
    f"over this gateway's limit of {HEAD_BYTES} bytes", HEAD_REASON)


@functools.cache
def too_many_connections(most: int) -> tuple[bytes, str]:
    """The answer to a connection past the process's most, and its reason."""
    return _closing_answer(
        b"503 Service Unavailable", f"this gateway has its most HTTP connections open "
        f"({most}): try again shortly", CONNECTIONS_REASON,
        b"retry-after: %d\r\n" % RETRY_AFTER_S), CONNECTIONS_REASON


@functools.cache
def too_many_from_address(most: int) -> tuple[bytes, str]:
    return _closing_answer(
        b"429 Too Many Requests", f"this gateway has its most connections open from your "
        f"address ({most}): close one, or send more requests on one (keep-alive)",
        PER_ADDRESS_REASON, b"retry-after: %d\r\n" % RETRY_AFTER_S), PER_ADDRESS_REASON


class _Sweep:
    """The connections of one event loop: those with a deadline to keep, and its one
    timer; and how many are open, in all and from each (untrusted) address."""

    def __init__(self, loop: asyncio.AbstractEventLoop, trusted: object) -> None:
        self.loop = loop
        self.protocols: set[GatewayProtocol] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.trusted = trusted  # `address in trusted`: a proxy's (uvicorn's own test)
        self.open = 0
        self.by_address: Counter[str] = Counter()
        # Connections past the limits that may yet be a probe, oldest first.
        self.probing: dict[GatewayProtocol, None] = {}
        self.lingering = 0  # refused connections lingering
        # Upgraded connections still counted, by their transport (hand_over).
        self.upgraded: dict[object, GatewayProtocol] = {}

    def admit(self, protocol: GatewayProtocol) -> tuple[bytes, str] | None:
        """Counts the connection in; or the answer that refuses it (not counted)."""
        most, most_per_address = _limits()
        address = protocol.client[0] if protocol.client else None
        if address in self.trusted:
            address = None
        if self.open >= most:
            return too_many_connections(most)
        if address is not None:
            if self.by_address[address] >= most_per_address:
                return too_many_from_address(most_per_address)
            self.by_address[address] += 1
        self.open += 1
        protocol._counted = (address,)
        return None

    def evict_silent(self) -> bool:
        """Closes the oldest connection waiting to be a probe that has sent nothing; False
        when every one has begun a request."""
        for protocol in self.probing:
            if protocol._head == 0 and protocol.cycle is None:
                del self.probing[protocol]
                protocol._probe_only = None
                protocol._dropping = True
                self.protocols.discard(protocol)
                protocol.transport.close()
                return True
        return False

    def release(self, protocol: GatewayProtocol) -> None:
        if protocol._counted is None:
            return
        (address,), protocol._counted = protocol._counted, None
        self.open -= 1
        if address is not None:
            left = self.by_address[address] - 1
            if left:
                self.by_address[address] = left
            else:
                del self.by_address[address]

    def watch(self, protocol: GatewayProtocol) -> None:
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


def _NOTHING() -> None:
    """No exchange yet (the first request's head is awaited)."""


class GatewayProtocol(HttpToolsProtocol):
    # What the connection was last found waiting for: the head of a request after the
    # exchange `cycle` (None: the first), or the rest of the body of `cycle`'s request (a
    # weak reference: the sweep keeps no exchange alive); and since when.
    _part: str | None = _HEAD
    _cycle: Callable[[], object] = staticmethod(_NOTHING)
    _since = 0.0
    # Bytes read, while no body was being read, since the last head completed: the next
    # request's head. (No exchange is held for it: one kept alive longer than uvicorn
    # keeps it outlives young collections, costing the cyclic collector.)
    _head = 0
    _uncounted = False  # some of the head may have come in a read of a body (not counted)
    _upgraded = False
    _dropping = False  # refused: what comes is dropped until the connection closes
    _counted: tuple[str | None] | None = None  # in the loop's counts, by this address
    # Past the limits: the refusal its request gets unless it is a probe (PROBE_PATHS).
    _probe_only: tuple[bytes, str] | None = None
    _lingering = False

    def data_received(self, data: bytes) -> None:
        if self._dropping:
            return
        cycle = self.cycle
        if cycle is not None and cycle.more_body:  # a body: the body limit's
            self._uncounted = True  # (and the start of the next head, if it comes)
            super().data_received(data)
            return
        self._head += len(data)
        super().data_received(data)
        # Refused once more than HEAD_BYTES came and the head is still not whole (a read
        # that ends a head may hold much of the body after it). Each read is parsed in
        # time linear in what has come of the head, so no more than HEAD_BYTES and one
        # read's worth is.
        if self.cycle is not cycle:  # a head completed: the next one counts from here
            self._head = 0
            if self.scope is not self.cycle.scope:
                # ... though the parser began it in this same read, uncounted
                self._uncounted = True
        elif self._head > HEAD_BYTES and not self._upgraded:
            self._refuse_head()

    def on_headers_complete(self) -> None:
        if not self._dropping and (self._head > HEAD_BYTES or self._uncounted):
            self._uncounted = False
            size = len(self.url) + sum(len(name) + len(value) + _HEADER_FRAMING
                                       for name, value in self.headers)
            if size > HEAD_BYTES:
                self._refuse_head()
        probe_only = self._probe_only
        if probe_only is not None and not self._dropping and not (
                self.parser.get_method() == b"GET" and not self.parser.should_upgrade()
                and self.url.partition(b"?")[0] in PROBE_PATHS):
            self._refuse(*probe_only)
        if self._dropping:  # refused: this request, and any after it in the same read
            self.cycle = _Refused()  # type: ignore[assignment]
            return
        cycle = self.cycle
        super().on_headers_complete()
        if probe_only is not None and self.cycle is not cycle:
            self.cycle.keep_alive = False  # its one answer, and closed

    def _refuse_head(self) -> None:
        self._refuse(HEAD_TOO_LARGE, HEAD_REASON)

    def _refuse(self, answer: bytes, reason: str) -> None:
        """What comes from now on is dropped; the answer goes out once the requests
        before this one are answered (pipelined, each gets its answer first), and the
        connection closes after it."""
        if self.transport.is_closing():
            return
        HTTP_REFUSED.labels(reason).inc()
        self._dropping = True
        self._sweep.protocols.discard(self)
        cycle = self.cycle
        if (cycle is None or cycle.response_complete) and not self.pipeline:
            self._answer_refusal(answer)
        else:
            self._refusal_due = answer

    _refusal_due: bytes | None = None  # the refusal, after the requests before it

    def on_response_complete(self) -> None:
        last = not self.pipeline
        super().on_response_complete()
        if self._refusal_due is not None and last:
            answer, self._refusal_due = self._refusal_due, None
            self._answer_refusal(answer)

    def _answer_refusal(self, answer: bytes) -> None:
        transport = self.transport
        if transport.is_closing():
            return
        transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()  # the answer, then the end of it; the client closes
        sweep = self._sweep
        if sweep.lingering < LINGERING_MOST:
            sweep.lingering += 1
            self._lingering = True
            self.loop.call_later(LINGER_S, transport.close)
        else:
            transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sweep = _SWEEPS.get(self.loop)
        if sweep is None:
            config = self.config
            trusted = (ProxyHeadersMiddleware(None, config.forwarded_allow_ips).trusted_hosts
                       if config.proxy_headers else ())
            sweep = _SWEEPS[self.loop] = _Sweep(self.loop, trusted)
        self._sweep = sweep
        refusal = sweep.admit(self)
        if refusal is not None:
            if len(sweep.probing) >= PROBE_SLOTS and not sweep.evict_silent():
                HTTP_REFUSED.labels(refusal[1]).inc()  # answered before it asks
                self._dropping = True
                self._answer_refusal(refusal[0])
                return
            sweep.probing[self] = None
            self._probe_only = refusal
        self._since = self.loop.time()
        sweep.watch(self)

    _running: object = None  # the exchange being answered

    def _start_asgi_task(self, cycle, app) -> None:  # type: ignore[no-untyped-def]
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        sweep = self._sweep
        sweep.protocols.discard(self)
        sweep.release(self)
        if self._probe_only is not None:
            self._probe_only = None
            del sweep.probing[self]
        if self._lingering:
            self._lingering = False
            sweep.lingering -= 1
        # uvicorn tells the last request read that the client left; with requests
        # pipelined, the one being answered is an earlier one, whose answer then went to
        # the closed transport: an "Exception in ASGI application" for each.
        for cycle in (self._running, *(cycle for cycle, _ in self.pipeline)):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        if self._dropping:  # its head was refused (on_headers_complete)
            return
        # (Past it this protocol hears nothing more, connection_lost included: a
        # connection waiting to be a probe, or refused, never gets here.)
        self._upgraded = True
        self._sweep.protocols.discard(self)
        if self._counted is not None:  # counted on until hand_over, or the socket's end
            self._sweep.upgraded[self.transport] = self
        super().handle_websocket_upgrade()

    def check(self, now: float, timeouts: dict[str, float]) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.more_body:  # (answered or not)
            part: str | None = _BODY
        elif cycle is None or cycle.response_complete:
            part = _HEAD
        else:
            part = None  # the request is in, and being answered: not timed
        if part != self._part or cycle is not self._cycle():
            self._part, self._since = part, now
            self._cycle = _NOTHING if cycle is None else weakref.ref(cycle)
        elif part is not None:
            limit = PROBE_HEAD_S if self._probe_only is not None else timeouts[part]
            if now - self._since >= limit:
                self.expire(part, limit)

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


def hand_over(transport: object) -> None:
    """A WebSocket's connection now under a limit of its own (the market sockets' count,
    an order socket's account): out of the HTTP connection counts, which held it from
    its upgrade. Again, or for a connection not counted, nothing."""
    sweep = _SWEEPS.get(asyncio.get_running_loop())
    protocol = sweep.upgraded.pop(transport, None) if sweep is not None else None
    if protocol is not None:
        sweep.release(protocol)


class GatewayWebSocketProtocol(AutoWebSocketsProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's WebSocket protocol, whose connection's end also ends its count."""

    def connection_lost(self, exc: Exception | None) -> None:
        hand_over(self.transport)
        super().connection_lost(exc)
