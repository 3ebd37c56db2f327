"""The API surface on a whole local venue (real engine, submitter, writer and gateway
processes): cancel and replace reach the book, books and trades read what the engine
did, and the order-entry WebSocket pushes the account's execution reports."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from venue.accounts import create_account
from venue.api.body_limit import body_limit
from venue.api.order_rules import ECHO_CHARACTERS, ECHO_ITEMS, MAX_JSON_DEPTH
from venue.local.venue import LocalVenue

pytestmark = pytest.mark.integration

WAIT_S = 30.0


class Client:
    """One account's HTTP client of the local venue."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self.key = key
        self.headers = {"Authorization": f"Bearer {key}"}

    async def order(self, **fields: Any) -> str:
        body = {"symbol": "BTC-USD", "type": "limit", "timeInForce": "gtc"} | fields
        response = await self.http.post("/v1/orders", headers=self.headers, json=body)
        assert response.status_code == 202, response.text
        return response.json()["orderId"]

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, headers=self.headers, params=params)

    async def until(self, order_id: str, **expected: str) -> dict[str, Any]:
        """The order once GET /v1/orders/{id} shows every `expected` field."""
        deadline = time.monotonic() + WAIT_S
        seen = None
        while time.monotonic() < deadline:
            response = await self.get(f"/v1/orders/{order_id}")
            if response.status_code == 200:
                seen = response.json()
                if all(seen.get(field) == value for field, value in expected.items()):
                    return seen
            await asyncio.sleep(0.05)
        raise AssertionError(f"order {order_id} never showed {expected}; last seen {seen}")


@pytest.fixture
async def clients(local_venue: LocalVenue) -> AsyncIterator[dict[str, Client]]:
    connection = await asyncpg.connect(local_venue.database_url)
    try:
        _, carol = await create_account(connection, "carol")
    finally:
        await connection.close()
    keys = local_venue.keys | {"carol": carol}
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=10) as http:
        yield {name: Client(http, key) for name, key in keys.items()}


async def fetch(local_venue: LocalVenue, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(local_venue.database_url)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


# --- cancel and replace ------------------------------------------------------------------

async def test_cancel_of_a_resting_order_ends_canceled_in_status_and_postgres(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    alice = clients["alice"]
    order_id = await alice.order(side="buy", price="100.00", quantity="1.0",
                                 clientOrderId="rest-1")
    await alice.until(order_id, status="new")
    response = await alice.http.delete("/v1/orders/by-client-id/rest-1", headers=alice.headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "pending_cancel"

    canceled = await alice.until(order_id, status="canceled")
    assert (canceled["cumQty"], canceled["leavesQty"]) == ("0.0000", "0.0000")
    [row] = await fetch(local_venue, "SELECT status, leaves_qty FROM orders WHERE order_id = $1",
                        int(order_id))
    assert (row["status"], row["leaves_qty"]) == ("canceled", 0)
    book = (await alice.get("/v1/books/BTC-USD")).json()
    assert book["bids"] == []
    listed = (await alice.get("/v1/orders", status="canceled")).json()["orders"]
    assert [order["orderId"] for order in listed] == [order_id]


async def test_an_order_reads_the_same_by_its_client_order_id_as_by_its_id(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    order_id = await alice.order(side="buy", price="100.00", quantity="1.0",
                                 clientOrderId="read-1")
    early = await alice.get("/v1/orders/by-client-id/read-1")  # queued or reported by now
    assert early.status_code == 200, early.text
    assert (early.json()["orderId"], early.json()["clientOrderId"]) == (order_id, "read-1")
    await alice.until(order_id, status="new")
    assert (await alice.get("/v1/orders/by-client-id/read-1")).json() == \
        (await alice.get(f"/v1/orders/{order_id}")).json()
    for who, client_order_id in ((bob, "read-1"), (alice, "never-sent")):
        missing = await who.get(f"/v1/orders/by-client-id/{client_order_id}")
        assert missing.status_code == 404 and missing.json()["reason"] == "unknown_order"
    assert (await alice.get("/v1/orders/by-client-id/bad id")).status_code == 422


async def test_replace_down_keeps_time_priority(local_venue: LocalVenue,
                                               clients: dict[str, Client]) -> None:
    alice, bob, carol = clients["alice"], clients["bob"], clients["carol"]
    first = await alice.order(side="buy", price="100.00", quantity="1.0")
    await alice.until(first, status="new")
    second = await bob.order(side="buy", price="100.00", quantity="1.0")
    await bob.until(second, status="new")

    # Another account cannot touch it; its owner reduces it and stays first in line.
    other = await bob.http.patch(f"/v1/orders/{first}", headers=bob.headers,
                                 json={"quantity": "0.5"})
    assert other.status_code == 404
    reduced = await alice.http.patch(f"/v1/orders/{first}", headers=alice.headers,
                                     json={"quantity": "0.5"})
    assert reduced.status_code == 202, reduced.text
    await alice.until(first, quantity="0.5000", leavesQty="0.5000")
    book = (await alice.get("/v1/books/BTC-USD")).json()
    assert book["bids"] == [{"price": "100.00", "quantity": "1.5000", "orders": 2}]

    taker = await carol.order(side="sell", price="100.00", quantity="0.5")
    await carol.until(taker, status="filled")
    await alice.until(first, status="filled")
    assert (await bob.until(second, status="new"))["cumQty"] == "0.0000"
    trades = await fetch(local_venue, "SELECT buy_order_id, quantity FROM trades")
    assert [(t["buy_order_id"], t["quantity"]) for t in trades] == [(int(first), 5000)]


async def test_replace_to_a_new_price_loses_time_priority(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    alice, bob, carol = clients["alice"], clients["bob"], clients["carol"]
    first = await alice.order(side="buy", price="99.00", quantity="1.0")
    await alice.until(first, status="new")
    second = await bob.order(side="buy", price="100.00", quantity="1.0")
    await bob.until(second, status="new")
    moved = await alice.http.patch(f"/v1/orders/{first}", headers=alice.headers,
                                   json={"price": "100.00"})
    assert moved.status_code == 202, moved.text
    await alice.until(first, price="100.00")

    taker = await carol.order(side="sell", price="100.00", quantity="1.0")
    await carol.until(taker, status="filled")
    await bob.until(second, status="filled")
    assert (await alice.until(first, status="new"))["leavesQty"] == "1.0000"


# --- books, trades, order lists ----------------------------------------------------------

async def test_book_trades_and_open_orders_read_what_the_engine_did(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    bids = [await alice.order(side="buy", price=price, quantity=quantity)
            for price, quantity in (("99.00", "0.1"), ("100.00", "0.2"), ("98.00", "0.3"))]
    asks = [await bob.order(side="sell", price=price, quantity=quantity)
            for price, quantity in (("101.00", "0.4"), ("102.00", "0.5"))]
    for order_id in bids:
        await alice.until(order_id, status="new")
    for order_id in asks:
        await bob.until(order_id, status="new")

    response = await alice.get("/v1/books/BTC-USD", depth=2)
    assert response.status_code == 200, response.text
    book = response.json()
    assert book["symbol"] == "BTC-USD"
    assert book["bids"] == [{"price": "100.00", "quantity": "0.2000", "orders": 1},
                            {"price": "99.00", "quantity": "0.1000", "orders": 1}]
    assert book["asks"] == [{"price": "101.00", "quantity": "0.4000", "orders": 1},
                            {"price": "102.00", "quantity": "0.5000", "orders": 1}]
    assert book["sequence"] >= 5
    assert (await alice.get("/v1/books/DOGE-USD")).status_code == 404

    page = (await alice.get("/v1/orders", status="open")).json()
    assert [order["orderId"] for order in page["orders"]] == list(reversed(bids))
    assert (await bob.get("/v1/orders", status="open")).json()["orders"][0]["orderId"] \
        == asks[-1]

    # bob's sell at 99.50 takes alice's best bid (100.00, resting: the trade's price).
    taker = await bob.order(side="sell", price="99.50", quantity="0.2")
    await bob.until(taker, status="filled")
    deadline = time.monotonic() + WAIT_S
    while not (trades := (await alice.get("/v1/trades/BTC-USD")).json()):
        assert time.monotonic() < deadline, "the trade never reached the database"
        await asyncio.sleep(0.05)
    [trade] = trades
    assert trade | {"price": "100.00", "quantity": "0.2000", "aggressorSide": "sell"} == trade
    assert (await alice.get("/v1/books/BTC-USD", depth=1)).json()["bids"] == [
        {"price": "99.00", "quantity": "0.1000", "orders": 1}]


# --- the order-entry WebSocket -----------------------------------------------------------

def ws_url(local_venue: LocalVenue) -> str:
    return local_venue.gateway_url.replace("http://", "ws://") + "/v1/ws"


@asynccontextmanager
async def order_socket(local_venue: LocalVenue, key: str | None = None,
                       auth_message: str | None = None,
                       max_queue: int = 16) -> AsyncIterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with connect(ws_url(local_venue), additional_headers=headers, proxy=None,
                       max_queue=max_queue) as socket:
        if auth_message is not None:
            await socket.send(json.dumps({"type": "auth", "key": auth_message}))
        assert (await receive(socket, "authenticated"))["type"] == "authenticated"
        yield socket


async def receive(socket: ClientConnection, *types: str,
                  collect: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The next message of one of `types`; the others pass into `collect`."""
    async with asyncio.timeout(WAIT_S):
        while True:
            message = json.loads(await socket.recv())
            if message["type"] in types:
                return message
            if collect is not None:
                collect.append(message)


async def reports_until(socket: ClientConnection, done, seen: list[dict[str, Any]]
                        ) -> list[dict[str, Any]]:
    """Read reports into `seen` until `done(seen)`."""
    while not done(seen):
        seen.append(await receive(socket, "report"))
    return seen


async def test_orders_over_the_websocket_are_acked_and_their_reports_pushed(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    async with order_socket(local_venue, key=clients["alice"].key) as socket:
        await socket.send(json.dumps({
            "type": "new", "requestId": 7, "symbol": "BTC-USD", "side": "buy",
            "price": "100.00", "quantity": "0.5", "clientOrderId": "ws-1"}))
        # The order's report may overtake the answers to this message and the next.
        early: list[dict[str, Any]] = []
        ack = await receive(socket, "ack", "reject", collect=early)
        assert ack | {"type": "ack", "requestId": 7, "clientOrderId": "ws-1",
                      "status": "pending_new", "duplicate": False} == ack
        order_id = ack["orderId"]
        await socket.send(json.dumps({"type": "new", "symbol": "BTC-USD", "side": "buy",
                                      "price": "100.005", "quantity": "0.5"}))
        reject = await receive(socket, "ack", "reject", collect=early)
        assert (reject["type"], reject["field"], reject["reason"]) == \
            ("reject", "price", "off_tick")

        [new] = await reports_until(socket, lambda seen: len(seen) == 1, early)
        assert new | {"orderId": order_id, "clientOrderId": "ws-1", "execType": "new",
                      "orderStatus": "new", "partition": 0, "symbol": "BTC-USD",
                      "price": "100.00", "quantity": "0.5000", "leavesQty": "0.5000",
                      "cumQty": "0.0000", "lastPx": None} == new

        bobs = await clients["bob"].order(side="sell", price="100.00", quantity="0.5")
        [trade] = await reports_until(socket, lambda seen: len(seen) == 1, [])
        assert trade | {"orderId": order_id, "execType": "trade", "orderStatus": "filled",
                        "lastQty": "0.5000", "lastPx": "100.00", "cumQty": "0.5000",
                        "leavesQty": "0.0000", "avgPx": "100.00"} == trade
        assert trade["sequence"] > new["sequence"]
        assert trade["tradeId"] is not None

        # Cancel over the socket, by clientOrderId.
        await socket.send(json.dumps({"type": "new", "symbol": "BTC-USD", "side": "buy",
                                      "price": "90.00", "quantity": "0.1",
                                      "clientOrderId": "ws-2"}))
        early = []  # reports that came before the acks
        second = (await receive(socket, "ack", collect=early))["orderId"]
        await socket.send(json.dumps({"type": "cancel", "clientOrderId": "ws-2"}))
        cancel_ack = await receive(socket, "ack", "reject", collect=early)
        assert cancel_ack | {"orderId": second, "status": "pending_cancel"} == cancel_ack
        reports = await reports_until(
            socket, lambda seen: any(r["execType"] == "canceled" for r in seen), early)
        assert [(r["orderId"], r["execType"]) for r in reports] == [(second, "new"),
                                                                    (second, "canceled")]
        # bob's order is none of alice's business: no report of it came here, and it
        # cannot be canceled from here.
        await socket.send(json.dumps({"type": "cancel", "orderId": bobs}))
        refused = await receive(socket, "ack", "reject")
        assert (refused["type"], refused["field"], refused["reason"]) == \
            ("reject", "orderId", "unknown_order")


async def test_a_websocket_with_a_bad_key_or_a_query_is_refused(local_venue: LocalVenue
                                                                 ) -> None:
    async with connect(ws_url(local_venue), proxy=None) as socket:
        await socket.send(json.dumps({"type": "auth", "key": "tv_not-a-key"}))
        refused = json.loads(await socket.recv())
        assert (refused["type"], refused["reason"]) == ("reject", "unauthorized")
        await socket.wait_closed()
        assert socket.close_code == 1008
    # The sockets take no query parameters: their handshakes are answered 422 naming
    # them, as an HTTP route's are, not a socket that ignores them (`/v1/market?symbol=`
    # subscribes to nothing; `?key=` authenticates nothing).
    base = local_venue.gateway_url.replace("http://", "ws://")
    for path, query, given in (("/v1/market", "symbol=BTC-USD&depth=10",
                                [("symbol", "BTC-USD"), ("depth", "10")]),
                               ("/v1/ws", "key=a&key=b", [("key", "b")])):
        with pytest.raises(InvalidStatus) as handshake:
            async with connect(f"{base}{path}?{query}", proxy=None):
                pass
        assert handshake.value.response.status_code == 422
        assert json.loads(handshake.value.response.body) == {"detail": [
            {"loc": ["query", name], "type": "extra_forbidden", "input": value,
             "msg": f"unknown query parameter {name!r}: this route takes none"}
            for name, value in given]}
    async with connect(f"{base}/v1/market", proxy=None) as socket:  # without: served
        await socket.send(json.dumps({"type": "subscribe", "channel": "trades",
                                      "symbol": "BTC-USD"}))
        assert json.loads(await socket.recv())["type"] == "subscribed"


async def test_subscribe_from_a_sequence_replays_missed_reports_exactly_once(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    alice, bob = clients["alice"], clients["bob"]
    async with order_socket(local_venue, auth_message=alice.key) as socket:
        first = await alice.order(side="buy", price="100.00", quantity="1.0")
        [seen] = await reports_until(socket, lambda seen: len(seen) == 1, [])
        assert (seen["orderId"], seen["execType"]) == (first, "new")
    last_seen = seen["sequence"]

    # While alice is away: a fill of her order, a new order of hers, and bob's orders.
    await bob.order(side="sell", price="100.00", quantity="0.4")
    second = await alice.order(side="buy", price="99.00", quantity="1.0")
    await bob.order(side="sell", price="105.00", quantity="1.0")
    await alice.until(first, status="partially_filled")
    await alice.until(second, status="new")
    missed = [(row["sequence"], row["order_id"], row["exec_type"]) for row in await fetch(
        local_venue, "SELECT e.sequence, e.order_id, e.exec_type FROM executions e "
        "JOIN orders o USING (order_id) WHERE o.account_id = "
        "(SELECT account_id FROM accounts WHERE name = 'alice') AND e.sequence > $1 "
        "ORDER BY e.sequence", last_seen)]
    assert [(order, kind) for _, order, kind in missed] == [
        (int(first), "trade"), (int(second), "new")]

    async with order_socket(local_venue, key=alice.key) as socket:
        await socket.send(json.dumps({"type": "subscribe", "partition": 0,
                                      "fromSequence": last_seen + 1, "requestId": "resume"}))
        replayed: list[dict[str, Any]] = []
        subscribed = await receive(socket, "subscribed", collect=replayed)
        assert subscribed == {"type": "subscribed", "partition": 0,
                              "fromSequence": last_seen + 1, "requestId": "resume"}
        assert [(r["sequence"], int(r["orderId"]), r["execType"]) for r in replayed] == missed

        # Live from there on, nothing twice: the next report is the next event.
        third = await alice.order(side="buy", price="98.00", quantity="1.0")
        [live] = await reports_until(socket, lambda seen: len(seen) == 1, [])
        assert (live["orderId"], live["execType"]) == (third, "new")
        assert live["sequence"] > missed[-1][0]

        # Asking again from the start replays the account's whole history once more.
        await socket.send(json.dumps({"type": "subscribe", "partition": 0,
                                      "fromSequence": 1}))
        again: list[dict[str, Any]] = []
        await receive(socket, "subscribed", collect=again)
        sequences = [r["sequence"] for r in again]
        assert sequences == sorted(set(sequences))
        assert sequences[0] == seen["sequence"] and sequences[-1] == live["sequence"]


async def test_what_a_client_may_get_wrong_on_the_order_socket_leaves_it_open_and_live(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    """A traceparent of any JSON type, a fromSequence past 2^64 or past the partition's
    end, and the auth message in a binary frame: each answered, and the socket goes on
    getting its reports (each once closed the socket, or silenced its reports)."""
    alice = clients["alice"]
    async with connect(ws_url(local_venue), proxy=None) as raw:
        await raw.send(json.dumps({"type": "auth", "key": alice.key}).encode())  # binary
        assert (await receive(raw, "authenticated"))["type"] == "authenticated"
    async with order_socket(local_venue, key=alice.key) as socket:
        for traceparent in (12, ["x"], {"a": 1}, None, True, "00-nonsense"):
            await socket.send(json.dumps({
                "type": "new", "traceparent": traceparent, "symbol": "BTC-USD",
                "side": "buy", "price": "1.00", "quantity": "0.0001"}))
            assert (await receive(socket, "ack", "reject"))["type"] == "ack"
        await socket.send(json.dumps({"type": "subscribe", "partition": 0,
                                      "fromSequence": 2**64, "requestId": "huge"}))
        huge = await receive(socket, "reject", "subscribed")
        assert (huge["type"], huge["field"], huge["reason"], huge["requestId"]) == (
            "reject", "fromSequence", "less_than_equal", "huge")
        for loose, field in (({"partition": True}, "partition"), ({"partition": "0"}, "partition"),
                             ({"partition": 0.0}, "partition"),
                             ({"fromSequence": "1"}, "fromSequence"),
                             ({"fromSequence": 1.0}, "fromSequence")):
            await socket.send(json.dumps({"type": "subscribe", "partition": 0,
                                          "fromSequence": 1} | loose))
            refused = await receive(socket, "reject", "subscribed")
            assert (refused["type"], refused["field"]) == ("reject", field), (loose, refused)
        # Subscribed (replayed from the start), then asked past the end: the socket goes on
        # from where the first left it.
        await socket.send(json.dumps({"type": "subscribe", "partition": 0, "fromSequence": 1}))
        assert (await receive(socket, "subscribed", "reject"))["type"] == "subscribed"
        await socket.send(json.dumps({"type": "subscribe", "partition": 0,
                                      "fromSequence": 2**64 - 1, "requestId": "ahead"}))
        ahead = await receive(socket, "reject", "subscribed")
        assert (ahead["type"], ahead["field"], ahead["reason"], ahead["requestId"]) == (
            "reject", "fromSequence", "past_end", "ahead")
        assert "partition 0 is at sequence" in ahead["message"]
        # Live reports still come.
        placed = await alice.order(side="buy", price="2.00", quantity="0.0001")
        live = await receive(socket, "report")
        while live["orderId"] != placed:
            live = await receive(socket, "report")
        assert live["execType"] == "new"


@pytest.mark.parametrize("order", [
    {"symbol": "BTC-USD", "side": "buy", "price": "100.005", "quantity": "0.5"},
    {"symbol": "BTC-USD", "side": "hold", "price": 100, "quantity": "0.5", "extra": 1},
    {"symbol": "NOPE", "side": "buy", "price": "1", "quantity": "1"},
    {"symbol": "BTC-USD", "side": "buy", "price": "1", "quantity": "NaN", "postOnly": "yes"},
    {"side": "sell", "quantity": "1", "clientOrderId": "no spaces"},
], ids=["off-tick", "many-fields", "unknown-symbol", "nan-and-no-bool", "missing-symbol"])
async def test_a_bad_order_is_worded_alike_over_rest_batch_and_the_websocket(
        local_venue: LocalVenue, clients: dict[str, Client], order: dict[str, Any]) -> None:
    alice = clients["alice"]
    rest = await alice.http.post("/v1/orders", headers=alice.headers, json=order)
    assert rest.status_code == 422
    batch = await alice.http.post("/v1/orders/batch", headers=alice.headers,
                                  json={"orders": [order]})
    assert batch.status_code == 200
    async with order_socket(local_venue, key=alice.key) as socket:
        await socket.send(json.dumps({"type": "new"} | order))
        reject = await receive(socket, "reject", "ack")
    by_rest = [e | {"loc": e["loc"][1:]} for e in rest.json()["detail"]]
    [item] = batch.json()["results"]
    by_batch = [e | {"loc": e["loc"][3:]} for e in item["errors"]]
    assert reject["type"] == "reject"
    assert by_rest == by_batch == reject["errors"]
    assert (reject["field"], reject["reason"]) == (
        ".".join(map(str, by_rest[0]["loc"])) or None, by_rest[0]["type"])


# --- JSON nested past the decoder's depth -------------------------------------------------

def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


# Past what a request may nest (MAX_JSON_DEPTH); just under the thousand levels the
# decoders recurse into, where wording the error ran past Python's recursion limit (a
# 500, or the connection dropped); past them.
DEPTHS = (MAX_JSON_DEPTH + 1, *range(900, 1001, 4), 5000)
DEEP = _nested(5000)


def _deep_json_invalid(response: httpx.Response, loc: list[Any]) -> None:
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert (problem["loc"], problem["type"], problem["msg"]) == \
        (loc, "json_invalid", f"JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)")


async def test_json_nested_too_deeply_is_refused_as_invalid_json_on_every_channel(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    """A body or a message nested past MAX_JSON_DEPTH gets json_invalid, never a 500 or a
    dropped socket (msgspec and json raise RecursionError past about a thousand levels,
    and an error that echoed a value a little less deep could not be encoded)."""
    alice = clients["alice"]
    headers = alice.headers | {"Content-Type": "application/json"}
    order = '{"symbol": "BTC-USD", "side": "buy", "price": "100.00", "quantity": "1", '
    for deep in map(_nested, DEPTHS):
        for body in (deep, order + f'"quantity": {deep}}}', order + f'"extra": {deep}}}'):
            _deep_json_invalid(await alice.http.post("/v1/orders", headers=headers,
                                                     content=body), ["body"])
        for body in (f'{{"orders": {deep}}}', f'{{"orders": [{order}"extra": {deep}}}]}}'):
            response = await alice.http.post("/v1/orders/batch", headers=headers, content=body)
            if response.status_code == 200:  # the item refused on its own, as a bad one is
                # (a list one level less deep than the body: not an order)
                [item] = response.json()["results"]
                assert item["errors"][0]["type"] in ("json_invalid", "model_type"), item
            else:
                _deep_json_invalid(response, ["body"])
    shallow = await alice.http.post("/v1/orders", headers=headers,
                                    content=order + f'"extra": {_nested(MAX_JSON_DEPTH - 1)}}}')
    assert shallow.json()["detail"][0]["type"] == "extra_forbidden", shallow.text
    resting = await alice.order(side="buy", price="90.00", quantity="0.1")
    _deep_json_invalid(await alice.http.patch(f"/v1/orders/{resting}", headers=headers,
                                              content=f'{{"quantity": {DEEP}}}'), ["body"])
    assert (await alice.until(resting, status="new"))["quantity"] == "0.1000"  # unchanged

    async with order_socket(local_venue, key=alice.key) as socket:
        await socket.send(DEEP)
        reject = await receive(socket, "reject", "ack")
        assert reject["reason"] == "json_invalid" and "nested too deeply" in reject["message"]
        await socket.send(json.dumps({"type": "cancel", "orderId": resting, "requestId": 1}))
        assert (await receive(socket, "ack", "reject"))["status"] == "pending_cancel"
    async with connect(ws_url(local_venue), proxy=None) as socket:  # in place of the key
        await socket.send(DEEP)
        refused = json.loads(await socket.recv())
        assert (refused["type"], refused["reason"]) == ("reject", "unauthorized")
        await socket.wait_closed()
        assert socket.close_code == 1008

    market = local_venue.gateway_url.replace("http://", "ws://") + "/v1/market"
    async with connect(market, proxy=None) as socket:
        await socket.send(DEEP)
        error = json.loads(await socket.recv())
        assert (error["type"], error["field"]) == ("error", "message")
        assert "nested too deeply" in error["message"]
        await socket.send(json.dumps({"type": "subscribe", "channel": "trades",
                                      "symbol": "BTC-USD"}))
        assert json.loads(await socket.recv())["type"] == "subscribed"


# --- bodies past the limit, and what an error echoes --------------------------------------

async def test_a_body_past_the_limit_is_413_unread_and_an_error_echoes_little(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    """A 50 MB field was read, decoded and echoed back in full (a 50 MB 422)."""
    alice = clients["alice"]
    limit = body_limit(local_venue.settings.batch_max_orders)
    headers = alice.headers | {"Content-Type": "application/json"}
    order = '{"symbol": "BTC-USD", "side": "buy", "price": "100.00", "quantity": "1"'
    huge = (order + ', "x": "' + "a" * limit + '"}').encode()

    async def chunked() -> AsyncIterator[bytes]:
        for at in range(0, len(huge), 65536):
            yield huge[at:at + 65536]

    for path in ("/v1/orders", "/v1/orders/batch", "/v1/orders/1"):
        for content in (huge, chunked()):  # announced, and sent in chunks
            method = "PATCH" if path == "/v1/orders/1" else "POST"
            response = await alice.http.request(method, path, headers=headers,
                                                content=content)
            assert response.status_code == 413, (path, response.text[:200])
            assert response.json() == {
                "detail": f"the request body is over this gateway's limit of {limit} bytes",
                "reason": "body_too_large", "limit": limit}
    # Under the limit: refused for what it is, and what the answer echoes is cut.
    for name, value in (("x", "b" * 100_000), ("y" * 100_000, 1), ("z", list(range(10_000)))):
        body = json.loads(order + "}") | {name: value}
        response = await alice.http.post("/v1/orders", headers=alice.headers, json=body)
        assert response.status_code == 422, response.text[:200]
        assert len(response.content) < 4096, response.content[:200]
        [problem] = response.json()["detail"]
        assert problem["type"] == "extra_forbidden"
        if name == "z":  # a container cut says so
            assert problem["input"] == [*range(15), "... (10000 items)"], problem
    # Expect: 100-continue gets the 413 at once, not an invitation to send 50 MB.
    host, port = local_venue.gateway_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST /v1/orders HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "
                 f"{alice.key}\r\nContent-Type: application/json\r\nContent-Length: "
                 f"50000000\r\nExpect: 100-continue\r\n\r\n".encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 413 "), status_line
    cut = (await alice.http.post("/v1/orders", headers=alice.headers, json=json.loads(
        order + "}") | {"price": "1" * 100_000})).json()["detail"][0]
    said = "... (100000 characters)"
    assert cut["input"] == "1" * (ECHO_CHARACTERS - len(said)) + said, cut
    long_query = await alice.get("/v1/orders", status="w" * 20_000)
    assert long_query.status_code == 422 and len(long_query.content) < 4096
    # Bodies up to the limit go through: the largest batch the venue takes.
    batch = [{"symbol": "BTC-USD", "side": "buy", "price": "1.00", "quantity": "0.0001",
              "clientOrderId": f"limit-{i}"} for i in range(local_venue.settings.batch_max_orders)]
    accepted = await alice.http.post("/v1/orders/batch", headers=alice.headers,
                                     json={"orders": batch})
    assert accepted.status_code == 200 and accepted.json()["accepted"] == len(batch)


async def test_a_market_order_over_the_order_socket_gives_its_type_as_order_type(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    """A message's "type" is "new": the order's own type travels as orderType (a market
    order could not be sent over the socket at all)."""
    alice = clients["alice"]
    market = {"type": "new", "orderType": "market", "symbol": "ETH-USD", "side": "buy",
              "quantity": "0.1"}
    async with order_socket(local_venue, key=alice.key) as socket:
        early: list[dict[str, Any]] = []
        await socket.send(json.dumps(market | {"requestId": "m1"}))
        ack = await receive(socket, "ack", "reject", collect=early)
        assert (ack["type"], ack["requestId"]) == ("ack", "m1"), ack
        reports = await reports_until(socket, lambda seen: any(
            r["orderId"] == ack["orderId"] and r["execType"] == "canceled" for r in seen), early)
        mine = [r for r in reports if r["orderId"] == ack["orderId"]]
        assert [(r["execType"], r["timeInForce"]) for r in mine] == [
            ("new", "ioc"), ("canceled", "ioc")], mine  # nothing to take: the rest canceled
        for wrong, field, reason in (({"timeInForce": "gtc"}, "timeInForce",
                                      "market_order_never_rests"),
                                     ({"orderType": "stop"}, "orderType", "enum"),
                                     ({"price": "1.00"}, "price", "price_not_allowed")):
            await socket.send(json.dumps(market | wrong))
            reject = await receive(socket, "ack", "reject")
            assert (reject["type"], reject["field"], reject["reason"]) == (
                "reject", field, reason), reject


async def test_a_client_that_leaves_mid_body_is_no_error_of_the_gateways(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    log = local_venue.data_dir / "logs" / "gateway.log"
    before = log.read_text(errors="replace").count("Exception in ASGI application")
    host, port = local_venue.gateway_url.removeprefix("http://").split(":")
    for method, path in (("POST", "/v1/orders"), ("POST", "/v1/orders/batch"),
                         ("PATCH", "/v1/orders/1")):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer "
                     f"{clients['alice'].key}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 100\r\n\r\n{{\"a\"".encode())
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
    await asyncio.sleep(0.5)
    assert (await clients["alice"].get("/v1/orders")).status_code == 200
    assert log.read_text(errors="replace").count("Exception in ASGI application") == before


# --- a key given twice ----------------------------------------------------------------------

async def test_a_key_given_twice_is_refused_on_every_channel_and_nothing_is_queued(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    """`{"side": "buy", ..., "side": "sell"}` was a sell (the decoder kept the last): what
    an object naming a key twice means is up to its reader (RFC 8259, 4)."""
    alice = clients["alice"]
    headers = alice.headers | {"Content-Type": "application/json"}
    said = "JSON names the key 'side' twice in one object: give each key once"
    good = '{"symbol": "BTC-USD", "side": "buy", "price": "1.00", "quantity": "0.0001"'
    for twice in (good + ', "side": "sell"}',
                  good.replace('"side"', '"\\u0073ide"') + ', "side": "sell"}'):
        response = await alice.http.post("/v1/orders", headers=headers, content=twice)
        assert response.status_code == 422, response.text
        [problem] = response.json()["detail"]
        assert (problem["type"], problem["msg"]) == ("json_invalid", said), problem
        batch = await alice.http.post("/v1/orders/batch", headers=headers,
                                      content=f'{{"orders": [{good}}}, {twice}]}}')
        assert batch.status_code == 200, batch.text
        answer = batch.json()
        assert (answer["accepted"], answer["rejected"]) == (1, 1), answer
        [problem] = answer["results"][1]["errors"]
        assert (problem["type"], problem["msg"]) == ("json_invalid", said), problem
        async with order_socket(local_venue, key=alice.key) as socket:
            await socket.send('{"type": "new", ' + twice[1:])
            reject = await receive(socket, "reject", "ack")
            assert (reject["type"], reject["reason"]) == ("reject", "json_invalid"), reject
            assert reject["message"] == said, reject
    batch = await alice.http.post("/v1/orders/batch", headers=headers, content=(
        f'{{"orders": [{good}}}], "orders": [{good}, "clientOrderId": "x"}}]}}'))
    assert batch.status_code == 422, batch.text
    assert batch.json()["detail"][0]["msg"] == said.replace("'side'", "'orders'")
    order_id = await alice.order(side="buy", price="1.00", quantity="0.0001")
    replace = await alice.http.patch(f"/v1/orders/{order_id}", headers=headers,
                                     content='{"price": "2.00", "price": "1.50"}')
    assert replace.status_code == 422, replace.text
    assert replace.json()["detail"][0]["msg"] == said.replace("'side'", "'price'")
    market = local_venue.gateway_url.replace("http://", "ws://") + "/v1/market"
    async with connect(market, proxy=None) as socket:
        await socket.send('{"type": "subscribe", "channel": "book", "symbol": "BTC-USD", '
                          '"depth": 10, "depth": 50}')
        error = json.loads(await socket.recv())
        assert (error["type"], error["field"]) == ("error", "message"), error
        assert error["message"].endswith(said.replace("'side'", "'depth'")), error
    # The two good orders (one of each batch) and the one replaced, none other.
    listed = (await alice.get("/v1/orders")).json()["orders"]
    deadline = time.monotonic() + WAIT_S
    while len(listed) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        listed = (await alice.get("/v1/orders")).json()["orders"]
    assert [(o["side"], o["price"]) for o in listed] == [("buy", "1.00")] * 3, listed


async def test_a_request_with_many_unknown_fields_gets_a_few_errors_and_a_count(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    """75,000 unknown fields made an 8 MB 422, each a second of the gateway's loop."""
    alice = clients["alice"]
    extra = {f"a{i}": 0 for i in range(70_000)}
    many = {"symbol": "BTC-USD", "side": "buy", "price": "1.00", "quantity": "0.0001"} | extra
    more = f"and {len(extra) - ECHO_ITEMS} more fields this request does not have"

    def few(errors: list[dict[str, Any]]) -> None:
        assert len(errors) == ECHO_ITEMS + 1, len(errors)
        assert [e["type"] for e in errors] == ["extra_forbidden"] * (ECHO_ITEMS + 1)
        assert errors[-1]["msg"] == more, errors[-1]

    rest = await alice.http.post("/v1/orders", headers=alice.headers, json=many)
    assert rest.status_code == 422 and len(rest.content) < 8192, len(rest.content)
    few(rest.json()["detail"])
    batch = await alice.http.post("/v1/orders/batch", headers=alice.headers,
                                  json={"orders": [many]})
    assert batch.status_code == 200 and len(batch.content) < 8192, len(batch.content)
    few(batch.json()["results"][0]["errors"])
    async with order_socket(local_venue, key=alice.key) as socket:
        for message in ({"type": "new"} | many,
                        {"type": "subscribe", "partition": 0, "fromSequence": 1} | extra,
                        {"type": "cancel", "orderId": "1"} | extra):
            await socket.send(json.dumps(message))
            reject = await receive(socket, "reject", "ack")
            assert reject["type"] == "reject", reject
            few(reject["errors"])


async def test_an_order_socket_that_does_not_read_its_errors_is_closed_at_its_bytes(
        local_venue: LocalVenue, clients: dict[str, Client]) -> None:
    """The outbox counted messages only (10,000): a client that sent requests refused
    with kilobytes of errors each, and read none, held gigabytes of the gateway's."""
    alice = clients["alice"]
    wrong = json.dumps({"type": "new", "symbol": "BTC-USD", "side": "buy", "price": "1.00",
                        "quantity": "0.0001"} | {f"x{i}": "v" * 300 for i in range(20)})
    async with order_socket(local_venue, key=alice.key, max_queue=1) as socket:
        for _ in range(3000):  # about 17 MB of errors: 3,000 messages, under the count
            await socket.send(wrong)
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(socket.recv(), WAIT_S)
        assert socket.close_code == 1013, socket.close_code
        assert socket.close_reason == "reading too slowly; resume with subscribe"
