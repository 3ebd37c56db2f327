"""What one client can do to the gateway's connections, cut short while it serves
everyone else (venue.api.http_protocol, venue.market.socket): a request that never
finishes (slowloris) or market sockets that never subscribe are cut off at their
deadlines (the gateway kept them for good); a head that never ends is refused at its
limit (it kept a core busy copying it)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import struct
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from venue.api.http_protocol import HEAD_BYTES, LINGERING_MOST, PROBE_SLOTS
from venue.local.venue import LocalVenue

pytestmark = pytest.mark.integration

HEAD_S = 2.0
BODY_S = 3.0
SUBSCRIBE_S = 2.0
MARKET_SOCKETS = 6
PER_ADDRESS = 4
WITHIN_S = 10.0  # how late a cut may come on a busy machine (the sweep is every 0.5 s)


@pytest.fixture(autouse=True)
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before local_venue: its gateway takes its deadlines from the environment."""
    monkeypatch.setenv("VENUE_REQUEST_HEAD_TIMEOUT_S", str(HEAD_S))
    monkeypatch.setenv("VENUE_REQUEST_BODY_TIMEOUT_S", str(BODY_S))
    monkeypatch.setenv("VENUE_MARKET_SUBSCRIBE_WITHIN_S", str(SUBSCRIBE_S))
    monkeypatch.setenv("VENUE_MARKET_SOCKETS", str(MARKET_SOCKETS))
    monkeypatch.setenv("VENUE_MARKET_SOCKETS_PER_ADDRESS", str(PER_ADDRESS))


def client(address: str) -> dict[str, str]:
    """The headers of a connection a proxy the gateway trusts (this machine's loopback,
    uvicorn's FORWARDED_ALLOW_IPS) forwards for a client at `address`."""
    return {"X-Forwarded-For": address}


class Raw:
    """One connection to the gateway, written to by hand."""

    def __init__(self, local_venue: LocalVenue, source: str | None = None) -> None:
        self.host, port = local_venue.gateway_url.removeprefix("http://").split(":")
        self.port = int(port)
        self.source = source  # the address it connects from (any of 127/8 is this host's)

    async def open(self) -> Raw:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, local_addr=(self.source, 0) if self.source else None)
        self.opened = time.monotonic()
        return self

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> tuple[bytes, float]:
        """All the gateway sends until it closes the connection, and when it closed it
        (seconds after the connection was opened)."""
        data = await asyncio.wait_for(self.reader.read(), WITHIN_S + BODY_S)
        return data, time.monotonic() - self.opened


def _408(answer: bytes, part: str, seconds: float) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:300]
    assert b"connection: close" in head.lower(), head
    assert json.loads(body) == {
        "detail": f"the request's {part} was not received whole within {seconds:g} s",
        "reason": "request_timeout"}


async def test_connections_that_never_finish_a_request_are_cut_and_the_rest_served(
        local_venue: LocalVenue) -> None:
    key = local_venue.keys["alice"]
    host = local_venue.gateway_url.removeprefix("http://")
    order = b'{"symbol": "BTC-USD", "side": "buy", "price": "1.00", "quantity": "0.0001"}'
    post = (f"POST /v1/orders HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(order)}\r\n\r\n").encode()

    # Market sockets that never subscribe, or stop, are closed meanwhile.
    market_idle = asyncio.create_task(market_sockets_that_do_not_subscribe_are_closed(
        local_venue))
    idle = [await Raw(local_venue).open() for _ in range(50)]
    half_head = await Raw(local_venue).open()
    await half_head.send(post[:40])
    half_body = await Raw(local_venue).open()
    await half_body.send(post + order[:20])
    # Answered at once (no such route: 404), its body never comes: nothing is read,
    # nothing left waiting for it for good.
    unanswered_body = await Raw(local_venue).open()
    await unanswered_body.send(post.replace(b"/v1/orders", b"/v1/nowhere") + order[:20])
    # Its 413 at once; the body it announced never comes.
    too_large = await Raw(local_venue).open()
    await too_large.send(post.replace(f"Content-Length: {len(order)}".encode(),
                                      b"Content-Length: 50000000\r\nExpect: 100-continue"))
    # A head a byte at a time, each byte well within uvicorn's keep-alive timeout, which
    # each byte used to set back.
    trickled = await Raw(local_venue).open()

    # Read as it comes: a byte written after the cut would have the read fail instead.
    trickled_answer = asyncio.create_task(trickled.answer())

    async def trickle() -> None:
        for byte in post:
            if trickled_answer.done():
                return
            await trickled.send(bytes((byte,)))
            await asyncio.sleep(0.2)

    trickling = asyncio.create_task(trickle())
    market = local_venue.gateway_url.replace("http://", "ws://") + "/v1/market"
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=5) as http, \
            connect(market, proxy=None) as feed:
        await feed.send(json.dumps({"type": "subscribe", "channel": "trades",
                                    "symbol": "BTC-USD"}))
        # A client that keeps its connection and sends a request now and then, each
        # whole: never cut (a head's deadline counts from the answer before it).
        kept = await Raw(local_venue).open()
        started = time.monotonic()
        while time.monotonic() - started < BODY_S + 2:
            await kept.send(f"GET /v1/instruments HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            status = await asyncio.wait_for(kept.reader.readline(), 5)
            assert status.startswith(b"HTTP/1.1 200 "), status
            length = 0
            while (line := await kept.reader.readline()) != b"\r\n":
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await kept.reader.readexactly(length)
            await asyncio.sleep(HEAD_S / 2)
            # Everyone else is served meanwhile.
            assert (await http.get("/v1/orders", headers={
                "Authorization": f"Bearer {key}"})).status_code == 200

        for connection in idle:  # began nothing: closed quietly
            answer, after = await connection.answer()
            assert answer == b"" and HEAD_S - 0.5 < after < HEAD_S + WITHIN_S, after
        answer, after = await half_head.answer()
        _408(answer, "head", HEAD_S)
        assert HEAD_S - 0.5 < after < HEAD_S + WITHIN_S, after
        answer, after = await trickled_answer
        _408(answer, "head", HEAD_S)
        assert HEAD_S - 0.5 < after < HEAD_S + WITHIN_S, after
        assert after < len(post) * 0.2  # cut while the head's bytes were still coming
        answer, after = await half_body.answer()
        _408(answer, "body", BODY_S)
        assert BODY_S - 0.5 < after < BODY_S + WITHIN_S, after
        answer, after = await unanswered_body.answer()
        assert answer.startswith(b"HTTP/1.1 404 ") and b" 408 " not in answer, answer
        assert BODY_S - 0.5 < after < BODY_S + WITHIN_S, after
        answer, after = await too_large.answer()
        assert answer.startswith(b"HTTP/1.1 413 ") and b" 408 " not in answer, answer
        assert after < BODY_S + WITHIN_S, after

        # The market socket outlived every deadline: it is not an HTTP request any more.
        await asyncio.wait_for(feed.recv(), 5)
        assert feed.close_code is None
        trickling.cancel()
        await asyncio.gather(trickling, return_exceptions=True)

        # Nothing of the cut requests reached the book; each begun one was counted (the
        # two answered before their body came, too: their connections were cut).
        mine = (await http.get("/v1/orders", headers={"Authorization": f"Bearer {key}"}))
        assert mine.json()["orders"] == [], mine.text
        metrics = (await http.get("/metrics")).text
        assert 'venue_http_refused_total{reason="request_timeout"} 5.0' in metrics
        assert 'venue_http_refused_total{reason="body_too_large"} 1.0' in metrics
    await market_idle


async def market_sockets_that_do_not_subscribe_are_closed(local_venue: LocalVenue) -> None:
    market = local_venue.gateway_url.replace("http://", "ws://") + "/v1/market"
    trades = {"type": "subscribe", "channel": "trades", "symbol": "BTC-USD"}
    async with connect(market, proxy=None) as never, connect(market, proxy=None) as left, \
            connect(market, proxy=None) as kept:
        opened = time.monotonic()
        for socket in (left, kept):
            await socket.send(json.dumps(trades))
        await never.send("not json")  # what it sends meanwhile is answered, and counts not
        assert json.loads(await never.recv())["type"] == "error"
        await asyncio.sleep(SUBSCRIBE_S / 2)
        await left.send(json.dumps({"type": "unsubscribe", "channel": "trades",
                                    "symbol": "BTC-USD"}))
        unsubscribed = time.monotonic()
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(never.recv(), WITHIN_S)
        assert never.close_code == 1008, never.close_code
        assert never.close_reason == (f"no subscription for {SUBSCRIBE_S:g} s: a market "
                                      "socket subscribes or is closed")
        assert SUBSCRIBE_S - 0.5 < time.monotonic() - opened < SUBSCRIBE_S + WITHIN_S
        with pytest.raises(ConnectionClosed):  # from its unsubscribe on
            while True:
                await asyncio.wait_for(left.recv(), WITHIN_S)
        assert left.close_code == 1008
        assert SUBSCRIBE_S - 0.5 < time.monotonic() - unsubscribed < SUBSCRIBE_S + WITHIN_S
        # Subscribed all along: open, and fed (a heartbeat a second while quiet).
        await asyncio.sleep(SUBSCRIBE_S)
        await asyncio.wait_for(kept.recv(), 5)
        assert kept.close_code is None


async def a_head_past_its_limit_is_431_and_a_large_body_after_a_head_is_not(
        local_venue: LocalVenue) -> None:
    key = local_venue.keys["alice"]
    host = local_venue.gateway_url.removeprefix("http://")
    endless = (b"GET /v1/instruments?" + b"a" * 4096 * 64,  # a URL
               b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096 * 64,  # a header
               b"GET /healthz HTTP/1.1\r\n" + b"X-H: v\r\n" * 40_000)  # many headers
    for head in endless:
        connection = await Raw(local_venue).open()
        answered = asyncio.create_task(connection.answer())  # read as it comes
        for at in range(0, len(head), 4096):
            await asyncio.sleep(0)
            if answered.done():
                break
            await connection.send(head[at:at + 4096])
        answer, after = await answered
        status, _, body = answer.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer
        assert json.loads(body) == {
            "detail": "the request's head (its line and headers) is over this gateway's "
                      f"limit of {HEAD_BYTES} bytes", "reason": "head_too_large"}
        assert after < 5, after
    # Heads that come whole in a read or two, never over the limit while unfinished: the
    # whole head is measured (they got 200 at two to four times the limit). One just
    # under it is taken.
    for size, piece, status in ((70_000, 1 << 20, b"431"), (40_000, 16 << 10, b"431"),
                                (HEAD_BYTES - 200, 1 << 20, b"200")):
        connection = await Raw(local_venue).open()
        head = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
                + b"a" * size + b"\r\n\r\n")
        for at in range(0, len(head), piece):
            await connection.send(head[at:at + piece])
        answer, _ = await connection.answer()
        assert answer.startswith(b"HTTP/1.1 " + status), (size, piece, answer[:200])
    # Behind a request on the same connection, in its write or split after it: that
    # request is answered, then the 431 (the first got no answer, the second got 200).
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 90_000 + b"\r\n\r\n"
    before = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for writes in ([before + big], [before + big[:60_000], big[60_000:]]):
        connection = await Raw(local_venue).open()
        for write in writes:
            await connection.send(write)
            await asyncio.sleep(0.05)
        answer, _ = await connection.answer()
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)
        assert statuses == [b"200", b"431"], answer[:400]
    # A head and the large body after it, written at once (a read holds both): taken.
    orders = [{"symbol": "BTC-USD", "side": "buy", "price": "1.00", "quantity": "0.0001",
               "clientOrderId": f"large-{i}"} for i in range(1000)]
    body = json.dumps({"orders": orders}).encode()
    assert len(body) > 3 * HEAD_BYTES
    connection = await Raw(local_venue).open()
    await connection.send(
        f"POST /v1/orders/batch HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode() + body)
    answer, _ = await connection.answer()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=5) as http:
        metrics = (await http.get("/metrics")).text
    assert 'venue_http_refused_total{reason="head_too_large"} 7.0' in metrics
    # Refusing a head leaves nothing in the gateway's log (an error a refusal, before).
    log = (local_venue.data_dir / "logs" / "gateway.log").read_text(errors="replace")
    assert '"level": "ERROR"' not in log, log[-3000:]


async def a_client_that_leaves_with_requests_pipelined_is_no_error_of_the_gateways(
        local_venue: LocalVenue) -> None:
    """Each left an "Exception in ASGI application" in the log: the answer to the request
    being answered went to the closed connection."""
    log = local_venue.data_dir / "logs" / "gateway.log"
    key = local_venue.keys["alice"]
    for path in ("/v1/orders", "/v1/books/BTC-USD", "/healthz", "/"):
        for _ in range(5):
            connection = await Raw(local_venue).open()
            await connection.send((f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                   f"Bearer {key}\r\n\r\n").encode() * 500)
            await asyncio.sleep(0.05)
            sock = connection.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.writer.close()  # reset, its answers unread
    await asyncio.sleep(1)
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=5) as http:
        assert (await http.get("/healthz")).status_code == 200
    assert "Exception in ASGI application" not in log.read_text(errors="replace")


async def market_sockets_past_the_process_s_most_are_closed_and_orders_go_on(
        local_venue: LocalVenue) -> None:
    """A client that opened market sockets by the thousand took every file descriptor of
    the gateway's: order entry was refused with them."""
    market = local_venue.gateway_url.replace("http://", "ws://") + "/v1/market"
    trades = json.dumps({"type": "subscribe", "channel": "trades", "symbol": "BTC-USD"})
    opened = [await connect(market, proxy=None, additional_headers=client(f"192.0.2.{n}"))
              for n in range(MARKET_SOCKETS)]
    try:
        for socket in opened:
            await socket.send(trades)
            assert json.loads(await socket.recv())["type"] == "subscribed"
        async with connect(market, proxy=None,
                           additional_headers=client("192.0.2.99")) as one_more:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(one_more.recv(), WITHIN_S)
            assert one_more.close_code == 1013
            assert one_more.close_reason == ("this gateway has its most market sockets "
                                             f"open ({MARKET_SOCKETS}): try again later")
        async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=5) as http:
            placed = await http.post("/v1/orders", headers={
                "Authorization": f"Bearer {local_venue.keys['alice']}"}, json={
                "symbol": "BTC-USD", "side": "buy", "price": "1.00", "quantity": "0.0001"})
            assert placed.status_code == 202, placed.text
        await opened.pop().close()
        await asyncio.sleep(0.2)
        async with connect(market, proxy=None,  # one closed: room for one
                           additional_headers=client("192.0.2.99")) as again:
            await again.send(trades)
            assert json.loads(await again.recv())["type"] == "subscribed"
    finally:
        for socket in opened:
            await socket.close()


async def market_sockets_past_an_addresss_most_are_closed_and_other_addresses_served(
        local_venue: LocalVenue) -> None:
    """One client could hold every market socket of the process, and the CPU of their
    fan-out: each subscribed socket is one more write for every update."""
    market = local_venue.gateway_url.replace("http://", "ws://") + "/v1/market"
    trades = json.dumps({"type": "subscribe", "channel": "trades", "symbol": "BTC-USD"})
    same = client("198.51.100.7")
    opened = [await connect(market, proxy=None, additional_headers=same)
              for _ in range(PER_ADDRESS)]
    try:
        for socket in opened:
            await socket.send(trades)
            assert json.loads(await socket.recv())["type"] == "subscribed"
        async with connect(market, proxy=None, additional_headers=same) as one_more:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(one_more.recv(), WITHIN_S)
            assert one_more.close_code == 1013
            assert one_more.close_reason == (
                "this gateway has its most market sockets open from your address "
                f"({PER_ADDRESS}): close one, or subscribe to more on one socket")
        async with connect(market, proxy=None,
                           additional_headers=client("198.51.100.8")) as another:
            await another.send(trades)
            assert json.loads(await another.recv())["type"] == "subscribed"
        await opened.pop().close()
        await asyncio.sleep(0.2)
        async with connect(market, proxy=None, additional_headers=same) as again:
            await again.send(trades)
            assert json.loads(await again.recv())["type"] == "subscribed"
    finally:
        for socket in opened:
            await socket.close()
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=5) as http:
        refused = (await http.get("/metrics")).text
    assert 'venue_http_refused_total{reason="market_sockets_per_address"} 1.0' in refused


async def test_what_one_client_sends_too_much_of_is_refused_and_the_rest_served(
        local_venue: LocalVenue) -> None:
    """One venue for the four (each its own venue cost seconds of `make test`)."""
    await a_head_past_its_limit_is_431_and_a_large_body_after_a_head_is_not(local_venue)
    await a_client_that_leaves_with_requests_pipelined_is_no_error_of_the_gateways(
        local_venue)
    await market_sockets_past_the_process_s_most_are_closed_and_orders_go_on(local_venue)
    await market_sockets_past_an_addresss_most_are_closed_and_other_addresses_served(
        local_venue)


HTTP_CONNECTIONS = 8
HTTP_PER_ADDRESS = 3


@pytest.fixture
def few_http_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before local_venue."""
    monkeypatch.setenv("VENUE_HTTP_CONNECTIONS", str(HTTP_CONNECTIONS))
    monkeypatch.setenv("VENUE_HTTP_CONNECTIONS_PER_ADDRESS", str(HTTP_PER_ADDRESS))


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: venue\r\n\r\n".encode()


async def _served(connection: Raw, path: str = "/v1/instruments") -> bytes:
    """A request on the connection, answered 200: its head."""
    await connection.send(_get(path))
    head = await asyncio.wait_for(connection.reader.readuntil(b"\r\n\r\n"), WITHIN_S)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    length = int(re.search(rb"content-length: (\d+)", head.lower())[1])
    await connection.reader.readexactly(length)
    return head


async def _refused(connection: Raw, status: bytes, reason: str, detail: str) -> None:
    """Its request refused, and the connection closed."""
    await connection.send(_get("/v1/instruments"))
    answer, _ = await connection.answer()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b"\r\n"), answer[:300]
    assert b"retry-after: 1\r\n" in head.lower() and b"connection: close" in head.lower()
    assert json.loads(body) == {"detail": detail, "reason": reason}


async def _probed(connection: Raw) -> None:
    """Past the limits, the kubelet's probes are answered all the same, and closed."""
    for path in ("/healthz", "/readyz"):
        head = await _served(connection, path)
        assert b"connection: close" in head.lower(), head
        assert await asyncio.wait_for(connection.reader.read(), WITHIN_S) == b""
        await connection.open()  # (from the same address)


UPGRADE = ("GET /healthz HTTP/1.1\r\nHost: venue\r\nConnection: Upgrade\r\n"
           "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()


async def _probes_get_through(local_venue: LocalVenue) -> None:
    """127.0.0.2 at its most: what it does past it keeps no probe out."""
    # A probe's path asking for an upgrade is no probe (it took a slot for good, upgraded
    # out of the protocol that would give it back; first on its connection it got 400).
    first = await Raw(local_venue, "127.0.0.2").open()
    await first.send(UPGRADE)
    assert (await first.answer())[0].startswith(b"HTTP/1.1 429 "), "an upgrade, refused"
    for _ in range(PROBE_SLOTS + 8):
        pipelined = await Raw(local_venue, "127.0.0.2").open()
        await pipelined.send(_get("/healthz") + UPGRADE)
        answer, _ = await pipelined.answer()
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.count(b"HTTP/1.1") == 1
    # Connections held open and silent: each new one takes the oldest one's slot.
    silent = [await Raw(local_venue, "127.0.0.2").open() for _ in range(PROBE_SLOTS + 8)]
    await _probed(await Raw(local_venue, "127.0.0.2").open())
    for one in silent:
        one.writer.close()


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def test_connections_past_an_addresss_most_or_the_processs_are_refused_and_the_rest_served(
        few_http_connections: None, local_venue: LocalVenue) -> None:
    """A client holding connections open (a request every few seconds on each keeps them
    past the deadlines) took file descriptors without bound: with all of them taken the
    gateway's accepts failed for everyone. Each address but a trusted proxy's (this
    machine's loopback, whose clients X-Forwarded-For tells apart) has its most, and so
    has the process; the kubelet's probes are answered past them; a socket is counted
    until a limit of its own holds it."""
    opened: list[Raw] = []

    async def connection(source: str) -> Raw:
        opened.append(await Raw(local_venue, source).open())
        return opened[-1]

    ws = local_venue.gateway_url.replace("http://", "ws://")
    trades = json.dumps({"type": "subscribe", "channel": "trades", "symbol": "BTC-USD"})
    try:
        for _ in range(HTTP_PER_ADDRESS - 1):
            await _served(await connection("127.0.0.2"))
        # Market sockets from the address: each a connection until the feed counts it.
        sockets = [await connect(f"{ws}/v1/market", proxy=None, local_addr=("127.0.0.2", 0))
                   for _ in range(2)]
        for socket in sockets:
            await socket.send(trades)
            assert json.loads(await socket.recv())["type"] == "subscribed"
        # An order socket not yet authenticated is still a connection of the address's.
        order_socket = await connect(f"{ws}/v1/ws", proxy=None, local_addr=("127.0.0.2", 0))
        sockets.append(order_socket)
        await _refused(await connection("127.0.0.2"), b"429 Too Many Requests",
                       "connections_per_address", "this gateway has its most connections "
                       f"open from your address ({HTTP_PER_ADDRESS}): close one, or send "
                       "more requests on one (keep-alive)")
        await _probed(await connection("127.0.0.2"))
        opened.pop().writer.close()
        await _probes_get_through(local_venue)
        await order_socket.send(json.dumps({"type": "auth", "key": local_venue.keys["alice"]}))
        assert json.loads(await order_socket.recv())["type"] == "authenticated"
        await _served(await connection("127.0.0.2"))  # its third: the account holds the socket
        await _served(await connection("127.0.0.3"))  # another address: 4 open
        for _ in range(HTTP_CONNECTIONS - 4):  # the trusted proxy's are not counted by address
            await _served(await connection("127.0.0.1"))
        await _refused(await connection("127.0.0.4"), b"503 Service Unavailable",
                       "http_connections", "this gateway has its most HTTP connections open "
                       f"({HTTP_CONNECTIONS}): try again shortly")
        await _probed(await connection("127.0.0.4"))
        opened.pop().writer.close()
        # Refused connections by the hundred, sending nothing: a few wait for a request
        # (it may be a probe), a few more linger after their answer; the rest are closed
        # once answered, holding no file descriptor of the gateway's.
        gateway = local_venue.children["gateway"].pid
        before = _open_files(gateway)
        flood = [await Raw(local_venue, "127.0.0.5").open() for _ in range(300)]
        await asyncio.sleep(0.5)
        held = _open_files(gateway) - before
        assert held <= PROBE_SLOTS + LINGERING_MOST + 10, held
        for one in flood:
            one.writer.close()
        for socket in sockets:  # served all along
            await socket.close()
        first = opened.pop(0)
        first.writer.close()
        await first.writer.wait_closed()
        await asyncio.sleep(0.5)  # the gateway reads its end
        await _served(await connection("127.0.0.2"))  # the address's third again
    finally:
        for connection_ in opened:
            connection_.writer.close()
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=5) as http:
        refused = (await http.get("/metrics")).text
    # One, the upgrade, and the upgrades pipelined after probes.
    assert f'venue_http_refused_total{{reason="connections_per_address"}} {PROBE_SLOTS + 10}.0' \
        in refused
    assert re.search(r'venue_http_refused_total\{reason="http_connections"\} (\d+)', refused)
    log = (local_venue.data_dir / "logs" / "gateway.log").read_text(errors="replace")
    assert '"level": "ERROR"' not in log and '"level": "WARNING"' not in log, log[-3000:]
