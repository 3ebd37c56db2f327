"""The public market-data feed /v1/market on a whole local venue: a book kept from it by
README's rules equals the engine's, views of a depth bring levels in from below, missed
messages come again or a snapshot does, bad requests are refused by field, and a client
that does not read is cut off without holding anyone back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from venue.api.order_rules import MESSAGE_CHARACTERS
from venue.local.venue import LocalVenue
from venue.market.book import checksum
from venue.market.client import FeedBook, subscribe_book
from venue.market.socket import SNAPSHOT_BURST, SNAPSHOTS_PER_S

pytestmark = pytest.mark.integration

SYMBOL = "BTC-USD"
WAIT_S = 30.0


class Trader:
    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {key}"}

    async def order(self, side: str, price: str, quantity: str = "1", **fields: Any) -> str:
        body = {"symbol": SYMBOL, "side": side, "price": price, "quantity": quantity} | fields
        response = await self.http.post("/v1/orders", headers=self.headers, json=body)
        assert response.status_code == 202, response.text
        return response.json()["orderId"]

    async def batch(self, orders: list[dict[str, Any]]) -> None:
        response = await self.http.post("/v1/orders/batch", headers=self.headers,
                                        json={"orders": orders})
        assert response.status_code == 200, response.text[:1024]
        assert response.json()["rejected"] == 0, response.text[:1024]

    async def cancel(self, order_id: str) -> None:
        response = await self.http.delete(f"/v1/orders/{order_id}", headers=self.headers)
        assert response.status_code in (200, 202, 409), response.text


@pytest.fixture
async def traders(local_venue: LocalVenue) -> AsyncIterator[tuple[Trader, Trader]]:
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=10) as http:
        alice, bob = (Trader(http, key) for key in list(local_venue.keys.values())[:2])
        yield alice, bob


def market_url(local_venue: LocalVenue) -> str:
    return local_venue.gateway_url.replace("http://", "ws://") + "/v1/market"


async def rest_book(local_venue: LocalVenue, depth: int = 10) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=10) as http:
        response = await http.get(f"/v1/books/{SYMBOL}", params={"depth": depth})
        assert response.status_code == 200, response.text  # public: no key
        return response.json()


def levels(side: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(level["price"], level["quantity"]) for level in side]


async def receive(socket: ClientConnection, timeout: float = WAIT_S) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(socket.recv(), timeout))


async def next_answer(socket: ClientConnection) -> dict[str, Any]:
    """The next message that is not a heartbeat (one comes whenever a view has been
    quiet for a second, between any two answers on a slow host)."""
    while (message := await receive(socket))["type"] == "heartbeat":
        pass
    return message


async def follow_until_equal(socket: ClientConnection, book: FeedBook, local_venue: LocalVenue,
                             depth: int = 10, others: list | None = None) -> dict[str, Any]:
    """Feeds `book` from the socket until it equals the engine's book (GET /v1/books)."""
    deadline = time.monotonic() + WAIT_S
    engine: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            message = await receive(socket, timeout=0.5)
        except TimeoutError:
            message = None
        if message is not None:
            if message.get("channel") == "book":
                for request in book.on_message(message):
                    await socket.send(json.dumps(request))
            elif others is not None:
                others.append(message)
        engine = await rest_book(local_venue, depth) if message is None or not book.early \
            else engine
        if engine and book.seq is not None and not book.early and (
                book.top(depth) == (levels(engine["bids"]), levels(engine["asks"]))):
            return engine
    raise AssertionError(f"the feed's book {book.top(depth)} at {book.seq} never became "
                         f"the engine's {engine}")


async def test_a_book_kept_from_the_feed_equals_the_engines_and_trades_are_sequenced(
        local_venue: LocalVenue, traders: tuple[Trader, Trader]) -> None:
    alice, bob = traders
    await alice.order("buy", "99.00", "2")  # on the book before anyone subscribes:
    deadline = time.monotonic() + WAIT_S  # queued is not yet in the engine
    while not (await rest_book(local_venue, 10))["bids"]:
        assert time.monotonic() < deadline, "the first order never reached the book"
        await asyncio.sleep(0.05)
    async with connect(market_url(local_venue)) as socket:
        await socket.send(json.dumps(subscribe_book(SYMBOL, depth=10)))
        await socket.send(json.dumps({"type": "subscribe", "channel": "trades",
                                      "symbol": SYMBOL}))
        said = await receive(socket)
        assert said == {"type": "subscribed", "channel": "book", "symbol": SYMBOL,
                        "depth": 10, "interval": 0}
        snapshot = await receive(socket)
        assert snapshot["type"] == "snapshot" and snapshot["seq"] >= 1
        book = FeedBook(SYMBOL)
        assert book.on_message(snapshot) == []
        for price in ("99.50", "99.75", "98.00"):
            await alice.order("buy", price)
        for price in ("100.50", "101.00"):
            await bob.order("sell", price, "3")
        await bob.order("sell", "99.50", "2")  # takes 99.75 (1) and 99.50 (1)
        others: list[dict[str, Any]] = []
        engine = await follow_until_equal(socket, book, local_venue, others=others)
        assert book.gaps == book.checksum_failures == 0
        assert engine["sequence"] >= book.seq  # the same numbering as the feed's

        trades = [m for m in others if m["type"] == "trades"]
        assert [m for m in others if m["type"] == "snapshot"][0]["channel"] == "trades"
        while len([t for m in trades for t in m["trades"]]) < 2:
            message = await receive(socket)
            if message["type"] == "trades":
                trades.append(message)
        chain = [m for m in others if m["type"] == "snapshot"][0]["seq"]
        for message in trades:
            assert message["prevSeq"] == chain
            chain = message["seq"]
        fills = [t for m in trades for t in m["trades"]]
        assert [(t["price"], t["quantity"], t["aggressorSide"]) for t in fills] == [
            ("99.75", "1.0000", "sell"), ("99.50", "1.0000", "sell")]
        assert all(t["sequence"] <= trades[-1]["seq"] for t in fills)
    # Each is what GET /v1/trades says of it, field for field, once Postgres holds it.
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=10) as http:
        deadline = time.monotonic() + WAIT_S
        while len(stored := {t["tradeId"]: t for t in (await http.get(
                f"/v1/trades/{SYMBOL}")).json()}) < len(fills):
            assert time.monotonic() < deadline, f"the trades never reached Postgres: {stored}"
            await asyncio.sleep(0.05)
    assert [stored[t["tradeId"]] for t in fills] == fills


async def test_a_view_of_some_depth_brings_levels_in_from_below(
        local_venue: LocalVenue, traders: tuple[Trader, Trader]) -> None:
    alice, _ = traders
    best = await alice.order("buy", "50.03")
    await alice.order("buy", "50.02")
    await alice.order("buy", "50.01")
    async with connect(market_url(local_venue)) as socket:
        await socket.send(json.dumps(subscribe_book(SYMBOL, depth=2)))
        book = FeedBook(SYMBOL, depth=2)
        await follow_until_equal(socket, book, local_venue, depth=2)
        assert [p for p, _ in book.top()[0]] == ["50.03", "50.02"]
        await alice.cancel(best)
        while True:
            message = await receive(socket)
            if message["type"] == "update":
                break
        # The best leaves (0) and the third comes in with its quantity, in one message.
        assert sorted(message["bids"]) == [["50.01", "1.0000"], ["50.03", "0"]]
        assert book.on_message(message) == []
        assert book.top()[0] == [("50.02", "1.0000"), ("50.01", "1.0000")]


async def test_subscribing_again_to_the_same_view_keeps_the_updates_coming(
        local_venue: LocalVenue, traders: tuple[Trader, Trader]) -> None:
    alice, _ = traders
    async with connect(market_url(local_venue)) as socket:
        for _ in range(2):  # the socket is the view's only member both times
            await socket.send(json.dumps(subscribe_book(SYMBOL, depth=5)))
            assert (await next_answer(socket))["type"] == "subscribed"
            assert (await next_answer(socket))["type"] == "snapshot"
        await alice.order("buy", "42.00")
        while True:
            message = await receive(socket)
            if message["type"] == "update":
                assert message["bids"] == [["42.00", "1.0000"]]
                break


async def test_after_unsubscribed_nothing_of_that_view_comes_while_the_book_moves(
        local_venue: LocalVenue, traders: tuple[Trader, Trader]) -> None:
    # The unsubscribe races the updates of a book that keeps trading: what the view sent
    # before the answer may still come, nothing after it; the trades feed goes on.
    alice, bob = traders

    async def trade() -> None:
        price = 60
        while True:
            await alice.order("buy", f"{price}.00")
            await bob.order("sell", f"{price}.00")
            price = 60 + (price - 59) % 20

    async with connect(market_url(local_venue)) as socket:
        await socket.send(json.dumps(subscribe_book(SYMBOL)))
        await socket.send(json.dumps({"type": "subscribe", "channel": "trades",
                                      "symbol": SYMBOL}))
        trading = asyncio.create_task(trade())
        try:
            while (await receive(socket)).get("type") != "update":
                pass  # the book view is live
            await socket.send(json.dumps({"type": "unsubscribe", "channel": "book",
                                          "symbol": SYMBOL}))
            while (message := await receive(socket))["type"] != "unsubscribed":
                assert message["type"] != "error", message
            assert message == {"type": "unsubscribed", "channel": "book", "symbol": SYMBOL}
            after: list[dict[str, Any]] = []
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                try:
                    after.append(await receive(socket, timeout=deadline - time.monotonic()))
                except TimeoutError:
                    break
        finally:
            trading.cancel()
            await asyncio.gather(trading, return_exceptions=True)
        assert [m for m in after if m.get("channel") == "book"] == []
        assert any(m["type"] == "trades" for m in after), after
        # Sent again (a client unsure it was heard, after a reconnect): answered the same.
        await socket.send(json.dumps({"type": "unsubscribe", "channel": "book",
                                      "symbol": SYMBOL}))
        while (message := await receive(socket))["type"] != "unsubscribed":
            assert message.get("channel") == "trades", message
        assert message["channel"] == "book"


async def test_a_quiet_subscription_gets_a_heartbeat_with_its_seq_every_second_or_so(
        local_venue: LocalVenue, traders: tuple[Trader, Trader]) -> None:
    """Each member of a quiet view is told where it stands: a book's heartbeats carry the
    seq of its last update, a trades subscription's the seq of its last trades."""
    alice, bob = traders
    subscribe_trades = {"type": "subscribe", "channel": "trades", "symbol": SYMBOL}

    async def beats(socket: ClientConnection, request: dict[str, Any]) -> list[float]:
        await socket.send(json.dumps(request))
        assert (await next_answer(socket))["type"] == "subscribed"
        seq = (await next_answer(socket))["seq"]
        await ready.wait()
        seen, updated = [], False
        while len(seen) < 3:
            message = await receive(socket, timeout=5)
            if message["type"] == "heartbeat":
                assert (message["channel"], message["symbol"], message["seq"]) == (
                    request["channel"], SYMBOL, seq), message
                seen.append(time.monotonic())
            else:  # the orders' (heartbeats may come before it, with the snapshot's seq)
                assert message["type"] in ("update", "trades"), message
                seq, updated, seen = message["seq"], True, []
        assert updated, "the orders' update never came"
        return seen

    ready = asyncio.Event()
    async with connect(market_url(local_venue)) as books, \
            connect(market_url(local_venue)) as trades:
        watching = asyncio.gather(beats(books, subscribe_book(SYMBOL, depth=10)),
                                  beats(trades, subscribe_trades))
        await asyncio.sleep(1)  # both subscribed (a snapshot each) before the orders
        await alice.order("sell", "42.00", "2")
        await bob.order("buy", "42.00")  # a trade, and a level of 1 left on the book
        ready.set()
        for seen in await asyncio.wait_for(watching, WAIT_S):
            # A view's quiet second is counted from its last message, and the feed
            # looks once a second: one every one to two seconds.
            assert 0.8 < seen[1] - seen[0] < 2.5 and 0.8 < seen[2] - seen[1] < 2.5, seen


async def test_missed_messages_come_again_and_a_snapshot_when_they_are_gone(
        local_venue: LocalVenue, traders: tuple[Trader, Trader]) -> None:
    alice, _ = traders
    async with connect(market_url(local_venue)) as socket:
        await socket.send(json.dumps(subscribe_book(SYMBOL, depth=10)))
        await receive(socket)
        snapshot = await receive(socket)
        updates = []
        for index in range(3):
            await alice.order("buy", f"10.0{index}")
            while True:
                message = await receive(socket)
                if message["type"] == "update":
                    updates.append(message)
                    break
        # As if the last two were lost: ask for what came after the first.
        await socket.send(json.dumps({"type": "resync", "channel": "book", "symbol": SYMBOL,
                                      "from": updates[0]["seq"]}))
        again = [await receive(socket), await receive(socket)]
        assert again == [u | {"replay": True} for u in updates[1:]]
        # From the snapshot: all three.
        await socket.send(json.dumps({"type": "resync", "channel": "book", "symbol": SYMBOL,
                                      "from": snapshot["seq"]}))
        assert [await receive(socket) for _ in updates] == [u | {"replay": True}
                                                            for u in updates]
        # A seq this subscription never had: a snapshot, which equals the book so far.
        await socket.send(json.dumps({"type": "resync", "channel": "book", "symbol": SYMBOL,
                                      "from": updates[0]["seq"] + 1}))
        fresh = await receive(socket)
        assert fresh["type"] == "snapshot" and fresh["seq"] == updates[-1]["seq"]
        book = FeedBook(SYMBOL)
        book.on_message(snapshot)
        for update in updates:
            book.on_message(update)
        assert book.top() == (list(map(tuple, fresh["bids"])), list(map(tuple, fresh["asks"])))
        assert fresh["checksum"] == checksum(*book.top(10))


async def test_a_bad_request_is_refused_by_field_and_changes_nothing(
        local_venue: LocalVenue) -> None:
    bad = [
        ("not json", "message"),
        ("[1, 2]", "message"),
        (json.dumps({"type": "buy"}), "type"),
        (json.dumps({"type": "subscribe", "channel": "candles", "symbol": SYMBOL}), "channel"),
        (json.dumps({"type": "subscribe", "channel": "book", "symbol": "DOGE-USD"}), "symbol"),
        (json.dumps({"type": "subscribe", "channel": "book", "symbol": "X" * 1_000_000}),
         "symbol"),  # its answer echoes little of it
        (json.dumps({"type": "subscribe", "channel": "book"}), "symbol"),
        (json.dumps({"type": "subscribe", "channel": "book", "symbol": SYMBOL,
                     "depth": -1}), "depth"),
        (json.dumps({"type": "subscribe", "channel": "book", "symbol": SYMBOL,
                     "depth": True}), "depth"),
        (json.dumps({"type": "subscribe", "channel": "book", "symbol": SYMBOL,
                     "interval": "fast"}), "interval"),
        (json.dumps({"type": "subscribe", "channel": "book", "symbol": SYMBOL,
                     "depth": 7}), "depth"),  # not one of the depths offered
        (json.dumps({"type": "subscribe", "channel": "book", "symbol": SYMBOL,
                     "interval": 1234}), "interval"),
        (json.dumps({"type": "resync", "channel": "book", "symbol": SYMBOL, "from": 1}),
         "symbol"),  # not subscribed
        (json.dumps({"type": "resync", "channel": "book", "symbol": SYMBOL, "from": -5}),
         "from"),
        # A field the message does not have is named, not ignored (a misspelt depth
        # subscribed at 10).
        (json.dumps({"type": "subscribe", "channel": "book", "symbol": SYMBOL,
                     "depht": 5}), "depht"),
        (json.dumps({"type": "subscribe", "channel": "trades", "symbol": SYMBOL,
                     "depth": "garbage"}), "depth"),
        (json.dumps({"type": "unsubscribe", "channel": "book", "symbol": SYMBOL,
                     "from": 1}), "from"),
    ]
    async with connect(market_url(local_venue)) as socket:
        for text, field in bad:
            await socket.send(text)
            answer = await receive(socket)
            assert answer["type"] == "error" and answer["field"] == field, (text, answer)
            assert answer["message"] and len(answer["message"]) <= MESSAGE_CHARACTERS
            if '"symbol"' not in text and field == "symbol":
                assert answer["message"].startswith("symbol is required"), answer
        # The socket still serves; null is a field left out.
        await socket.send(json.dumps(subscribe_book(SYMBOL) | {"depth": None}))
        subscribed = await receive(socket)
        assert (subscribed["type"], subscribed["depth"]) == ("subscribed", 10), subscribed
        assert (await receive(socket))["type"] == "snapshot"
        # A socket asking for snapshot after snapshot is refused past its bucket, by
        # field, and served again once it has waited.
        resync = json.dumps({"type": "resync", "channel": "book", "symbol": SYMBOL})
        for _ in range(40):
            await socket.send(resync)
        kinds = []
        while len(kinds) < 40:
            answer = await receive(socket)
            if answer["type"] not in ("heartbeat", "update"):
                kinds.append(answer)
        snapshots = sum(k["type"] == "snapshot" for k in kinds)
        assert SNAPSHOT_BURST - 1 <= snapshots < 30, kinds
        refused = [k for k in kinds if k["type"] == "error"]
        assert len(refused) == 40 - snapshots and all(k["field"] == "type" for k in refused)
        assert "too many snapshots" in refused[0]["message"]
        await asyncio.sleep(1)
        await socket.send(resync)
        while (answer := await receive(socket))["type"] in ("heartbeat", "update"):
            pass
        assert answer["type"] == "snapshot"
        # A resync the view's memory answers counts too (one could ask for a thousand
        # messages again and again, for nothing).
        await asyncio.sleep(SNAPSHOT_BURST / 10)
        for _ in range(40):
            await socket.send(json.dumps({"type": "resync", "channel": "book",
                                          "symbol": SYMBOL, "from": answer["seq"]}))
        refused = []
        while len(refused) < 40 - SNAPSHOT_BURST - 2:
            if (answer := await receive(socket))["type"] == "error":
                refused.append(answer)
        assert "too many snapshots and resyncs" in refused[0]["message"], refused[0]


async def test_conflation_merges_the_changes_between_sends(
        local_venue: LocalVenue, traders: tuple[Trader, Trader]) -> None:
    alice, _ = traders
    async with connect(market_url(local_venue)) as socket:
        await socket.send(json.dumps(subscribe_book(SYMBOL, depth=10, interval=1000)))
        await receive(socket)
        book = FeedBook(SYMBOL)
        book.on_message(await receive(socket))
        for _ in range(5):
            await alice.order("buy", "20.00")
        updates = []
        deadline = time.monotonic() + WAIT_S
        while book.top()[0][:1] != [("20.00", "5.0000")] and time.monotonic() < deadline:
            message = await receive(socket)
            if message["type"] == "update":
                updates.append(message)
                assert book.on_message(message) == []
        assert book.top()[0][:1] == [("20.00", "5.0000")]
        assert 1 <= len(updates) < 5  # five changes, merged into fewer sends


@pytest.fixture
def small_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before local_venue: 64 KiB may wait for a market socket (the snapshot bucket now
    bounds what a client can ask to be sent again; 4 MiB took long to fill)."""
    monkeypatch.setenv("VENUE_MARKET_BUFFER_BYTES", str(64 << 10))


async def test_a_client_that_does_not_read_is_closed_and_holds_no_one_back(
        small_buffers: None, local_venue: LocalVenue, traders: tuple[Trader, Trader]
) -> None:
    alice, _ = traders
    url = market_url(local_venue)
    # The hog's kernel holds little for it: what it does not read waits in the gateway.
    host, port = local_venue.gateway_url.removeprefix("http://").split(":")
    small = socket.socket()
    small.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    small.connect((host, int(port)))
    async with connect(url) as reader, connect(url, sock=small) as hog:
        await reader.send(json.dumps(subscribe_book(SYMBOL, depth=0)))
        await hog.send(json.dumps(subscribe_book(SYMBOL, depth=0)))
        await receive(hog)  # subscribed
        await receive(hog)  # its snapshot
        # A deep book (5,000 bids), so that each snapshot of it is some 100 KB.
        for first in range(300, 5300, 1000):
            await alice.batch([{"symbol": SYMBOL, "side": "buy", "price": f"{price}.00",
                                "quantity": "1"} for price in range(first, first + 1000)])
        book = FeedBook(SYMBOL, depth=0)
        await follow_until_equal(reader, book, local_venue, depth=1000)
        # The hog asks for the whole book again and again (as often as its bucket lets
        # it) and reads nothing.
        asks = json.dumps({"type": "resync", "channel": "book", "symbol": SYMBOL})

        async def ask_again() -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await hog.send(asks)
                    await asyncio.sleep(1 / SNAPSHOTS_PER_S)

        asking = asyncio.create_task(ask_again())
        await asyncio.sleep(1)
        await alice.order("buy", "1.00")
        await follow_until_equal(reader, book, local_venue, depth=1000)
        deadline = time.monotonic() + WAIT_S
        async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=5) as http:
            while "venue_market_slow_consumers_total 1.0" not in (await http.get(
                    "/metrics")).text:  # cut off: it has its close frame to read
                assert time.monotonic() < deadline, "the hog was never cut off"
                await asyncio.sleep(0.2)
        asking.cancel()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(hog.recv(), WAIT_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert closed.value.rcvd.reason.startswith("slow consumer: over"), closed.value.rcvd
