"""The load generator of `venue bench e2e`: one process, many keep-alive connections.

A plain HTTP/1.1 client on asyncio streams: each connection sends a request, reads the
answer, sends the next. In ws mode each connection is an order-entry WebSocket instead. It costs the generator little CPU, so what is measured is the
venue. Orders are limit orders around a mid price, half of them crossing, from two
accounts, with unique clientOrderIds.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from array import array
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import msgspec
import websockets

from venue.api.backpressure import BACKPRESSURE_REASONS
from venue.contract.instruments import Instrument


@dataclass
class LoadResult:
    requests: int = 0
    accepted_ids: array = field(default_factory=lambda: array("q"))
    rejected: int = 0
    refused: int = 0  # orders refused for backpressure, and non-2xx answers
    latencies_ms: array = field(default_factory=lambda: array("d"))
    cpu_s: float = 0.0
    reports: int = 0  # execution reports pushed to the load's WebSockets


@dataclass(frozen=True)
class LoadSpec:
    url: str
    path: str  # /v1/orders, /v1/orders/batch, /v1/ws, or the bare baseline's path
    keys: tuple[str, ...]
    instruments: tuple[Instrument, ...]
    duration_s: float
    connections: int
    batch_size: int  # orders per request; 0: one order per request, no batch wrapper
    seed: int
    tag: str  # makes clientOrderIds unique across processes and runs
    rate: float = 0.0  # orders/s this spec sends at most, over its connections (0: no cap)
    # Every order priced 10 ticks through the mid, so it meets whatever rests on the other
    # side, and each account on one side (the first buys, the next sells, ...), so
    # self-trade prevention never cancels it instead: the book stays a level deep however
    # long the load runs (a soak's memory then shows the venue's, not a book that grows).
    crossing: bool = False


# Distinct random batches each connection's batch requests cycle through, in random order.
BATCH_TEMPLATES = 64


def mid_ticks(instrument: Instrument) -> int:
    """Where the generator's prices centre: a round price well inside the band."""
    return max(instrument.min_price_ticks + 100, instrument.max_price_ticks // 20)


class _Orders:
    """Order JSON for one connection, written from templates: the generator must cost
    little next to what it measures. Every order differs: random side, price and size,
    and a unique clientOrderId."""

    def __init__(self, spec: LoadSpec, rng: random.Random, account: int) -> None:
        self.rng = rng
        self.tag = f"{spec.tag}-{account}-"
        # Per instrument and side, the order's JSON up to its price, the 21 prices
        # within 10 ticks of mid (about half of all orders cross the other side; with
        # spec.crossing the one price 10 ticks through it), and the quantities of 1 to 5
        # lots.
        self.kinds = []
        for instrument in spec.instruments:
            mid = mid_ticks(instrument)
            for side in ("buy", "sell"):
                sign = 1 if side == "buy" else -1
                self.kinds.append((
                    f'{{"symbol":"{instrument.symbol}","side":"{side}","price":"',
                    [instrument.price_text(mid + sign * offset)
                     for offset in ((10,) if spec.crossing else range(-10, 11))],
                    [instrument.quantity_text(lots) for lots in range(1, 6)]))
        self.instruments = len(spec.instruments)
        self.side = account % 2 if spec.crossing else None  # 0 buys, 1 sells
        self._size = 0
        self._templates: list[bytes] = []

    def order(self, serial: int) -> str:
        return self._order(serial, f"{self.tag}{serial}")

    def _order(self, serial: int, client_order_id: str) -> str:
        rng = self.rng.random
        side = (rng() < 0.5) if self.side is None else self.side
        head, prices, quantities = self.kinds[(serial % self.instruments) * 2 + side]
        return (f'{head}{prices[int(rng() * len(prices))]}","quantity":"{quantities[int(rng() * 5)]}",'
                f'"clientOrderId":"{client_order_id}"}}')

    def batch(self, first_serial: int, size: int) -> bytes:
        """A batch request's body: `size` orders, clientOrderIds ending in first_serial
        + 1 onwards. Their sides, prices and sizes are one of BATCH_TEMPLATES random
        batches made at the first call, picked at random: the clientOrderIds are then
        put in by one %-format in C. Writing every order's JSON in Python was a
        microsecond an order, 5% of the CPU a 100,000 orders/s run has."""
        if self._size != size:
            # "\0" marks where each clientOrderId's serial goes; any "%" is a literal one.
            self._templates = [("{\"orders\":[" + ",".join(
                self._order(i, f"{self.tag}\0") for i in range(1, size + 1)) + "]}").replace(
                "%", "%%").replace("\0", "%d").encode() for _ in range(BATCH_TEMPLATES)]
            self._size = size
        template = self._templates[int(self.rng.random() * BATCH_TEMPLATES)]
        return template % tuple(range(first_serial + 1, first_serial + size + 1))


async def _connection(spec: LoadSpec, index: int, deadline: float, result: LoadResult) -> None:
    parts = urlsplit(spec.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    account = index % len(spec.keys)
    orders = _Orders(spec, random.Random(spec.seed * 1000 + index), account)
    head = (f"POST {spec.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {spec.keys[account]}\r\n"
            "Content-Type: application/json\r\nContent-Length: ").encode()
    serial = index * 100_000_000
    # With a rate, each connection sends its requests on a schedule of its share.
    period = (spec.batch_size or 1) * spec.connections / spec.rate if spec.rate else 0.0
    due = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if period:
                due += period
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            if spec.batch_size:
                body = orders.batch(serial, spec.batch_size)
                serial += spec.batch_size
            else:
                serial += 1
                body = orders.order(serial).encode()
            request = head + str(len(body)).encode() + b"\r\n\r\n" + body
            started = time.perf_counter()
            writer.write(request)
            try:
                status, retry_after, answer = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closed the connection (idle past its keep-alive while this
                # one waited out a Retry-After): once more on a new one. The orders'
                # clientOrderIds make a second send of any the server did take harmless.
                writer.close()
                reader, writer = await asyncio.open_connection(parts.hostname,
                                                               parts.port or 80)
                started = time.perf_counter()
                writer.write(request)
                status, retry_after, answer = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.requests += 1
            _count(status, answer, spec, result)
            if status == 429:  # as a client should: wait as long as the venue asks
                await asyncio.sleep(min(retry_after, max(0.0, deadline - time.monotonic())))
    finally:
        writer.close()


# Orders a WebSocket has sent and not yet had answered: the gateway always has the next
# one at hand, while each socket's orders still arrive in the order sent.
WS_WINDOW = 8
WS_QUIET_S = 0.5


class _WsAnswer(msgspec.Struct):
    type: str
    request_id: int | None = msgspec.field(default=None, name="requestId")
    order_id: str | None = msgspec.field(default=None, name="orderId")
    duplicate: bool = False
    reason: str | None = None


_decode_ws = msgspec.json.Decoder(_WsAnswer).decode


async def _ws_connection(spec: LoadSpec, index: int, deadline: float,
                         result: LoadResult) -> None:
    """Orders as `new` messages on one order-entry WebSocket, WS_WINDOW in flight; acks
    and the account's execution reports read as they come."""
    account = index % len(spec.keys)
    orders = _Orders(spec, random.Random(spec.seed * 1000 + index), account)
    url = spec.url.replace("http", "ws", 1) + spec.path
    window = asyncio.Semaphore(WS_WINDOW)
    sent: dict[int, float] = {}
    async with websockets.connect(url, max_size=None, additional_headers={
            "Authorization": f"Bearer {spec.keys[account]}"}) as socket:
        if _decode_ws(await socket.recv()).type != "authenticated":
            raise RuntimeError(f"{url}: not authenticated")

        async def read() -> None:
            async for text in socket:
                answer = _decode_ws(text)
                if answer.type == "report":
                    result.reports += 1
                    continue
                started = sent.pop(answer.request_id, None)
                if started is None:
                    continue
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.requests += 1
                if answer.type == "ack":
                    if not answer.duplicate:
                        result.accepted_ids.append(int(answer.order_id))
                elif answer.reason in BACKPRESSURE_REASONS:
                    result.refused += 1
                else:
                    result.rejected += 1
                window.release()

        reading = asyncio.create_task(read())
        serial = index * 100_000_000
        try:
            while time.monotonic() < deadline:
                await window.acquire()
                serial += 1
                sent[serial] = time.perf_counter()
                await socket.send(f'{{"type":"new","requestId":{serial},'
                                  f'{orders.order(serial)[1:]}')
            for _ in range(WS_WINDOW):  # every order sent is answered before leaving
                await asyncio.wait_for(window.acquire(), timeout=60)
            while True:  # and the reports still coming are read, until a quiet moment
                before = result.reports
                await asyncio.sleep(WS_QUIET_S)
                if result.reports == before:
                    break
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)


class _Item(msgspec.Struct):
    status: str
    order_id: str | None = msgspec.field(default=None, name="orderId")
    duplicate: bool = False
    retry_after: int | None = msgspec.field(default=None, name="retryAfter")  # backpressure


class _Batch(msgspec.Struct):
    results: list[_Item]


_decode_batch = msgspec.json.Decoder(_Batch).decode
_ORDER_ID = re.compile(rb'"orderId":"(\d+)"')
_decode_item = msgspec.json.Decoder(_Item).decode


def _count(status: int, answer: bytes, spec: LoadSpec, result: LoadResult) -> None:
    if status >= 300:
        result.refused += spec.batch_size or 1
        return
    if not spec.path.startswith("/v1/"):
        return  # the bare baseline: nothing to count
    if spec.batch_size and answer.startswith(b'{"accepted":') and b'"rejected":0,' in answer \
            and b'"duplicate":true' not in answer:
        # Every order taken, none a duplicate (the usual answer): the ids are read off the
        # bytes in C rather than decoded into an object per order.
        result.accepted_ids.extend(map(int, _ORDER_ID.findall(answer)))
        return
    items = _decode_batch(answer).results if spec.batch_size else [_decode_item(answer)]
    for item in items:
        if item.retry_after is not None:
            result.refused += 1
        elif item.status == "rejected":
            result.rejected += 1
        elif not item.duplicate:
            result.accepted_ids.append(int(item.order_id))


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """Status, Retry-After seconds (0 without one) and body of one answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = retry_after = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"retry-after":
            retry_after = int(value)
    return status, retry_after, await reader.readexactly(length) if length else b""


def run(spec: LoadSpec) -> LoadResult:
    """Drive the load for spec.duration_s; runs in its own process."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    result = LoadResult()
    started_cpu = time.process_time()

    async def main() -> None:
        deadline = time.monotonic() + spec.duration_s
        connection = _ws_connection if spec.path.endswith("/ws") else _connection
        await asyncio.gather(*(connection(spec, i, deadline, result)
                               for i in range(spec.connections)))

    asyncio.run(main())
    result.cpu_s = time.process_time() - started_cpu
    return result
