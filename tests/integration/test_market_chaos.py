"""The feed under chaos: a client reads /v1/market through a proxy that drops, delays and
reorders the venue's messages while random orders and cancels flow. Kept by README's
rules (held early updates, resync on a gap, snapshot on a bad checksum), its books equal
the engine's at the end, every time."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from venue.local.process import free_port
from venue.local.venue import LocalVenue
from venue.market.client import FeedBook, subscribe_book

pytestmark = pytest.mark.integration

SYMBOL = "BTC-USD"
LOAD_S = 5.0
SETTLE_S = 45.0
DROP, DELAY, MAX_DELAY_S = 0.05, 0.2, 0.3


class ChaosProxy:
    """A WebSocket proxy to `upstream`: what the client says goes through untouched;
    what the venue says is dropped, delayed or (by the delays) reordered."""

    def __init__(self, upstream: str, rng: random.Random) -> None:
        self.upstream = upstream
        self.rng = rng
        self.port = free_port()
        self.dropped = self.delayed = self.passed = 0
        self.chaos = True

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _relay(self, client: ServerConnection) -> None:
        async with connect(self.upstream, max_queue=None) as venue:
            async def up() -> None:
                async for message in client:
                    await venue.send(message)

            async def down() -> None:
                pending: set[asyncio.Task] = set()

                async def later(message: Any, delay: float) -> None:
                    await asyncio.sleep(delay)
                    with suppress(ConnectionClosed):
                        await client.send(message)

                async for message in venue:
                    roll = self.rng.random()
                    if self.chaos and roll < DROP:
                        self.dropped += 1
                    elif self.chaos and roll < DROP + DELAY:
                        self.delayed += 1
                        task = asyncio.create_task(
                            later(message, self.rng.uniform(0, MAX_DELAY_S)))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                    else:
                        self.passed += 1
                        await client.send(message)

            tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
            with suppress(ConnectionClosed):
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ChaosProxy]:
        async with serve(self._relay, "127.0.0.1", self.port):
            yield self


async def random_orders(local_venue: LocalVenue, rng: random.Random, stop: asyncio.Event
                        ) -> int:
    """Random limit orders and cancels from two accounts around 100.00 until `stop`."""
    sent = 0
    keys = list(local_venue.keys.values())[:2]
    resting: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=10) as http:
        while not stop.is_set():
            key = rng.choice(keys)
            headers = {"Authorization": f"Bearer {key}"}
            orders = [{"symbol": SYMBOL, "side": rng.choice(("buy", "sell")),
                       "price": f"{rng.randint(9950, 10050) / 100:.2f}",
                       "quantity": str(rng.randint(1, 5))} for _ in range(20)]
            response = await http.post("/v1/orders/batch", headers=headers,
                                       json={"orders": orders})
            assert response.status_code in (200, 202, 207), response.text
            resting += [(key, result["orderId"]) for result in response.json()["results"]
                        if result.get("orderId")]
            sent += len(orders)
            for _ in range(min(5, len(resting))):
                key, order_id = resting.pop(rng.randrange(len(resting)))
                await http.delete(f"/v1/orders/{order_id}",
                                  headers={"Authorization": f"Bearer {key}"})
            await asyncio.sleep(0.02)
    return sent


async def keep(socket: ClientConnection, book: FeedBook, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            message = json.loads(await asyncio.wait_for(socket.recv(), 0.2))
        except TimeoutError:
            continue
        if message.get("channel") == "book":
            for request in book.on_message(message):
                await socket.send(json.dumps(request))


async def engine_book(local_venue: LocalVenue, depth: int) -> tuple[list, list]:
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=10) as http:
        body = (await http.get(f"/v1/books/{SYMBOL}", params={"depth": depth})).json()
    return ([(l["price"], l["quantity"]) for l in body["bids"]],
            [(l["price"], l["quantity"]) for l in body["asks"]])


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_client_through_a_lossy_reordering_proxy_ends_with_the_engines_book(
        local_venue: LocalVenue, seed: int) -> None:
    rng = random.Random(seed)
    upstream = local_venue.gateway_url.replace("http://", "ws://") + "/v1/market"
    proxy = ChaosProxy(upstream, rng)
    async with proxy.running(), connect(proxy.url) as top, connect(proxy.url) as full:
        books = {10: FeedBook(SYMBOL, depth=10), 1000: FeedBook(SYMBOL, depth=0)}
        await top.send(json.dumps(subscribe_book(SYMBOL, depth=10)))
        await full.send(json.dumps(subscribe_book(SYMBOL, depth=0, interval=100)))
        stop_reading, stop_orders = asyncio.Event(), asyncio.Event()
        readers = [asyncio.create_task(keep(top, books[10], stop_reading)),
                   asyncio.create_task(keep(full, books[1000], stop_reading))]
        orders = asyncio.create_task(random_orders(local_venue, rng, stop_orders))
        await asyncio.sleep(LOAD_S)
        stop_orders.set()
        sent = await orders
        # Still through the chaos: heartbeats show the clients where they stand.
        deadline = time.monotonic() + SETTLE_S
        engine: dict[int, tuple] = {}
        while time.monotonic() < deadline:
            engine = {depth: await engine_book(local_venue, depth) for depth in books}
            if all(book.seq is not None and not book.early
                   and book.top(depth) == engine[depth] for depth, book in books.items()):
                break
            await asyncio.sleep(0.5)
        stop_reading.set()
        await asyncio.gather(*readers)
        said = {depth: (book.gaps, book.checksum_failures, book.snapshots, book.applied)
                for depth, book in books.items()}
        for depth, book in books.items():
            assert book.top(depth) == engine[depth], (
                f"seed {seed}: depth {depth} at {book.seq}, early {sorted(book.early)}, "
                f"(gaps, checksum failures, snapshots, applied) {said}")
        assert sent > 500 and engine[1000][0] and engine[1000][1]  # a real book moved
        assert proxy.dropped and proxy.delayed  # and the chaos was real
        assert any(book.gaps for book in books.values())
        # Lost and late messages are gaps, never a wrong book: the venue's checksums hold.
        assert not any(book.checksum_failures for book in books.values()), said
