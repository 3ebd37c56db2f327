"""Requests that lose their race, on a whole local venue (real gateway, Redis, submitter,
engine, writer and Postgres processes), over REST and over the order-entry WebSocket.

A cancel or replace that reaches the engine after its order is done is answered with a
cancel_rejected or replace_rejected report stating the order's real state
(too_late_to_cancel); one the gateway already knows is too late is answered 409 (a
WebSocket reject) in the same words. Either way the order stays as the engine left it,
GET /v1/orders/{id} says so, the refusal is an execution in Postgres, and every order
after it is persisted. To make the engine, not the gateway, see the late request, the
writer is paused (SIGSTOP) while the race is run: the gateway then still reads the
order as it was.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from venue.accounts import create_account
from venue.contract.dead_letters import dead_letter_count
from venue.enginepb import engine_pb2 as pb
from venue.enginepb import engine_pb2_grpc
from venue.contract.wire import ORDER_STATUS_WORDS
from venue.local.venue import LocalVenue
from venue.contract.keys import Keys

pytestmark = pytest.mark.integration

WAIT_S = 30.0
# The randomized test's requests: bounded in `make test`; `make races` runs it long.
RANDOM_REQUESTS = int(os.environ.get("VENUE_RACE_REQUESTS", "1500"))
# How far a status has come: it never goes back.
RANK = {"pending_new": 0, "new": 1, "partially_filled": 2, "filled": 3, "canceled": 3,
        "rejected": 3, "expired": 3}
DONE = {"filled", "canceled", "rejected", "expired"}


# --- the parts the tests drive ---------------------------------------------------------

class Rest:
    """One account's requests over HTTP; answers as (status code, body)."""

    channel = "rest"

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {key}"}

    async def new(self, **fields: Any) -> tuple[int, dict[str, Any]]:
        body = {"type": "limit", "timeInForce": "gtc"} | fields
        response = await self.http.post("/v1/orders", headers=self.headers, json=body)
        return response.status_code, response.json()

    async def cancel(self, order_id: str | None = None, client_order_id: str | None = None
                     ) -> tuple[int, dict[str, Any]]:
        response = await self.http.delete(_path(order_id, client_order_id),
                                          headers=self.headers)
        return response.status_code, response.json()

    async def replace(self, order_id: str | None = None, client_order_id: str | None = None,
                      **terms: str) -> tuple[int, dict[str, Any]]:
        response = await self.http.patch(_path(order_id, client_order_id),
                                         headers=self.headers, json=terms)
        return response.status_code, response.json()

    async def get(self, order_id: str) -> dict[str, Any] | None:
        response = await self.http.get(f"/v1/orders/{order_id}", headers=self.headers)
        return response.json() if response.status_code == 200 else None


def _path(order_id: str | None, client_order_id: str | None) -> str:
    return (f"/v1/orders/{order_id}" if order_id is not None
            else f"/v1/orders/by-client-id/{client_order_id}")


class Socket(Rest):
    """The same account's orders, cancels and replaces over its WebSocket instead;
    answers as REST's would be (202, or the reject's status), and the reports the socket
    pushes kept in `reports`."""

    channel = "ws"

    def __init__(self, http: httpx.AsyncClient, key: str, socket: ClientConnection) -> None:
        super().__init__(http, key)
        self.socket = socket
        self.reports: list[dict[str, Any]] = []
        self._answers: dict[int, asyncio.Future] = {}
        self._next = 0
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.socket:
            message = json.loads(text)
            if message["type"] == "report":
                self.reports.append(message)
            elif (request := message.get("requestId")) in self._answers:
                self._answers.pop(request).set_result(message)

    async def _ask(self, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self._next += 1
        answer = self._answers[self._next] = asyncio.get_running_loop().create_future()
        await self.socket.send(json.dumps(message | {"requestId": self._next}))
        message = await asyncio.wait_for(answer, WAIT_S)
        if message["type"] == "ack":
            return 202, message
        codes = {"unknown_order": 404, "too_late_to_cancel": 409, "unsupported": 409}
        return codes.get(message["reason"], 422), message

    async def new(self, **fields: Any) -> tuple[int, dict[str, Any]]:
        return await self._ask({"type": "new"} | fields)

    async def cancel(self, order_id: str | None = None, client_order_id: str | None = None
                     ) -> tuple[int, dict[str, Any]]:
        return await self._ask({"type": "cancel"} | _ref(order_id, client_order_id))

    async def replace(self, order_id: str | None = None, client_order_id: str | None = None,
                      **terms: str) -> tuple[int, dict[str, Any]]:
        return await self._ask({"type": "replace"} | _ref(order_id, client_order_id) | terms)

    async def report(self, order_id: str, exec_type: str) -> dict[str, Any]:
        """The pushed report of `order_id` with `exec_type`, once it came."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for report in self.reports:
                if (report["orderId"], report["execType"]) == (order_id, exec_type):
                    return report
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {exec_type} report of {order_id}; got {self.reports}")

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


def _ref(order_id: str | None, client_order_id: str | None) -> dict[str, Any]:
    return {"orderId": int(order_id)} if order_id is not None else {
        "clientOrderId": client_order_id}


@asynccontextmanager
async def socket_of(local_venue: LocalVenue, http: httpx.AsyncClient, key: str
                    ) -> AsyncIterator[Socket]:
    url = local_venue.gateway_url.replace("http://", "ws://") + "/v1/ws"
    async with connect(url, additional_headers={"Authorization": f"Bearer {key}"},
                       proxy=None) as raw:
        assert json.loads(await raw.recv())["type"] == "authenticated"
        socket = Socket(http, key, raw)
        try:
            yield socket
        finally:
            await socket.close()


@pytest.fixture
async def http(local_venue: LocalVenue) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=WAIT_S) as client:
        yield client


@pytest.fixture(params=["rest", "ws"])
async def alice(request, local_venue: LocalVenue, http: httpx.AsyncClient
                ) -> AsyncIterator[Socket | Rest]:
    """The account that races: over REST (its reports still watched on a socket) or
    over the WebSocket."""
    async with socket_of(local_venue, http, local_venue.keys["alice"]) as socket:
        if request.param == "ws":
            yield socket
        else:
            rest = Rest(http, local_venue.keys["alice"])
            rest.report = socket.report  # type: ignore[attr-defined]
            yield rest


@pytest.fixture
def bob(local_venue: LocalVenue, http: httpx.AsyncClient) -> Rest:
    return Rest(http, local_venue.keys["bob"])


@contextmanager
def writer_paused(local_venue: LocalVenue) -> Iterator[None]:
    """Nothing reaches Postgres meanwhile: the gateway reads orders as they were."""
    pid = local_venue.children["writer"].pid
    os.killpg(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)


async def engine_order(local_venue: LocalVenue, order_id: str | int) -> pb.OrderState:
    async with grpc.aio.insecure_channel(local_venue.engines[0].address) as channel:
        return await engine_pb2_grpc.MatchingEngineStub(channel).GetOrder(
            pb.OrderRequest(order_id=int(order_id)), timeout=5)


async def engine_says(local_venue: LocalVenue, order_id: str, status: str,
                      **fields: int) -> pb.OrderState:
    """The engine's own account of the order, once it states `status` (and `fields`)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        state = await engine_order(local_venue, order_id)
        if ORDER_STATUS_WORDS.get(state.order.order_status) == status and all(
                getattr(state.order, name) == value for name, value in fields.items()):
            return state
        await asyncio.sleep(0.02)
    raise AssertionError(f"the engine never said order {order_id} is {status}: {state}")


async def until(client: Rest, order_id: str, **expected: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    seen = None
    while time.monotonic() < deadline:
        seen = await client.get(order_id)
        if seen is not None and all(seen.get(k) == v for k, v in expected.items()):
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} never showed {expected}; last seen {seen}")


async def executions_of(local_venue: LocalVenue, order_id: str) -> list[dict[str, Any]]:
    """The order's executions in Postgres, once its last report is there."""
    connection = await asyncpg.connect(local_venue.database_url)
    try:
        return [dict(row) for row in await connection.fetch(
            "SELECT sequence, exec_type, order_status, reject_reason, cum_qty, leaves_qty "
            "FROM executions WHERE order_id = $1 ORDER BY sequence", int(order_id))]
    finally:
        await connection.close()


async def persisted_refusal(local_venue: LocalVenue, order_id: str, exec_type: str
                            ) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        rows = await executions_of(local_venue, order_id)
        if rows and rows[-1]["exec_type"] == exec_type:
            return rows[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {exec_type} execution of {order_id}: {rows}")


async def nothing_set_aside(local_venue: LocalVenue) -> None:
    redis = Redis.from_url(local_venue.redis_url)
    try:
        assert await dead_letter_count(redis, Keys(local_venue.venue.name)) == 0
    finally:
        await redis.aclose()


async def accepted(client: Rest, **fields: Any) -> str:
    code, answer = await client.new(**fields)
    assert code == 202, answer
    return answer["orderId"]


def order(side: str, price: str, quantity: str, **more: Any) -> dict[str, Any]:
    return {"symbol": "AAPL", "side": side, "price": price, "quantity": quantity} | more


# --- one race each ------------------------------------------------------------------------

async def test_a_cancel_after_the_fill_is_too_late_and_the_fill_stands(
        local_venue: LocalVenue, alice: Rest, bob: Rest) -> None:
    sell = await accepted(alice, **order("sell", "10.00", "5"))
    await until(alice, sell, status="new")
    with writer_paused(local_venue):
        await accepted(bob, **order("buy", "10.00", "5"))
        await engine_says(local_venue, sell, "filled")
        code, answer = await alice.cancel(sell)  # the gateway still reads it as new
        assert (code, answer["status"]) == (202, "pending_cancel")
    report = await alice.report(sell, "cancel_rejected")
    assert report | {"orderStatus": "filled", "rejectReason": "too_late_to_cancel",
                     "cumQty": "5", "leavesQty": "0", "quantity": "5"} == report
    assert (await until(alice, sell, status="filled"))["cumQty"] == "5"
    row = await persisted_refusal(local_venue, sell, "cancel_rejected")
    assert (row["order_status"], row["reject_reason"], row["cum_qty"]) == (
        "filled", "too_late_to_cancel", 5)
    # And the gateway, knowing now, answers the next one at once, in the same words.
    code, answer = await alice.cancel(sell)
    assert code == 409 and answer["reason"] == "too_late_to_cancel"
    assert answer.get("status", answer.get("orderStatus")) == "filled"
    await nothing_set_aside(local_venue)


@pytest.fixture
def short_dedup_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before local_venue: a clientOrderId is claimed for a second (or two, or three)."""
    monkeypatch.setenv("VENUE_DEDUP_WINDOW_S", "1")


async def test_a_cancel_by_a_reused_client_order_id_reaches_the_new_order_not_the_old(
        short_dedup_window: None, local_venue: LocalVenue, alice: Rest) -> None:
    """Given again after its window, a clientOrderId names a new order, which Postgres
    may not have yet while it has the old one under the same id: a cancel by that id
    reached the old order and cancelled it."""
    old = await accepted(alice, **order("buy", "10.00", "1", clientOrderId="reused"))
    await until(alice, old, status="new")
    with writer_paused(local_venue):  # the new order stays out of Postgres
        deadline = time.monotonic() + WAIT_S
        while True:  # repeats are the old order's until its claim is gone
            code, answer = await alice.new(**order("buy", "11.00", "2", clientOrderId="reused"))
            assert code == 202, answer
            if answer["orderId"] != old:
                new = answer["orderId"]
                break
            assert time.monotonic() < deadline, "the clientOrderId stayed claimed"
            await asyncio.sleep(0.5)
        await engine_says(local_venue, new, "new")
        named = await alice.http.get("/v1/orders/by-client-id/reused", headers=alice.headers)
        assert named.status_code == 200 and named.json()["orderId"] == new, named.text
        code, answer = await alice.cancel(client_order_id="reused")
        assert code == 202 and answer["orderId"] == new, answer
        await engine_says(local_venue, new, "canceled")
    await until(alice, new, status="canceled")
    assert (await until(alice, old, status="new"))["quantity"] == "1"
    assert ORDER_STATUS_WORDS[(await engine_order(local_venue, old)).order.order_status] == "new"
    await nothing_set_aside(local_venue)


async def test_a_replace_after_the_fill_is_too_late(local_venue: LocalVenue, alice: Rest,
                                                    bob: Rest) -> None:
    buy = await accepted(alice, **order("buy", "20.00", "3"))
    await until(alice, buy, status="new")
    with writer_paused(local_venue):
        await accepted(bob, **order("sell", "20.00", "3"))
        await engine_says(local_venue, buy, "filled")
        code, _ = await alice.replace(buy, price="19.00")
        assert code == 202
    report = await alice.report(buy, "replace_rejected")
    assert (report["orderStatus"], report["rejectReason"], report["price"]) == (
        "filled", "too_late_to_cancel", "20.00")
    assert (await until(alice, buy, status="filled"))["price"] == "20.00"
    await persisted_refusal(local_venue, buy, "replace_rejected")


async def test_a_second_cancel_is_too_late_and_states_the_cancel(
        local_venue: LocalVenue, alice: Rest) -> None:
    buy = await accepted(alice, **order("buy", "30.00", "2", clientOrderId="twice"))
    await until(alice, buy, status="new")
    with writer_paused(local_venue):
        assert (await alice.cancel(buy))[0] == 202
        assert (await alice.cancel(client_order_id="twice"))[0] == 202  # not yet known done
    report = await alice.report(buy, "cancel_rejected")
    assert (report["orderStatus"], report["rejectReason"]) == ("canceled", "too_late_to_cancel")
    await until(alice, buy, status="canceled")
    kinds = [row["exec_type"] for row in await executions_of(local_venue, buy)]
    assert kinds == ["new", "canceled", "cancel_rejected"]


async def test_a_replace_after_the_cancel_is_too_late_and_nothing_rests(
        local_venue: LocalVenue, alice: Rest) -> None:
    buy = await accepted(alice, **order("buy", "40.00", "2"))
    await until(alice, buy, status="new")
    with writer_paused(local_venue):
        assert (await alice.cancel(buy))[0] == 202
        assert (await alice.replace(buy, quantity="4"))[0] == 202
    report = await alice.report(buy, "replace_rejected")
    assert (report["orderStatus"], report["quantity"]) == ("canceled", "2")
    await until(alice, buy, status="canceled", quantity="2")
    state = await engine_order(local_venue, buy)
    assert state.known == pb.OrderState.KNOWN_DONE


async def test_a_cancel_of_an_order_the_engine_rejected_is_too_late(
        local_venue: LocalVenue, alice: Rest, bob: Rest) -> None:
    await accepted(bob, **order("sell", "50.00", "1"))
    with writer_paused(local_venue):
        post_only = await accepted(alice, **order("buy", "50.00", "1", postOnly=True))
        await engine_says(local_venue, post_only, "rejected")
        # Still queued as far as the gateway knows: the cancel follows it to the engine.
        assert (await alice.cancel(post_only))[0] == 202
    report = await alice.report(post_only, "cancel_rejected")
    assert (report["orderStatus"], report["rejectReason"]) == ("rejected", "too_late_to_cancel")
    assert (await until(alice, post_only, status="rejected"))["rejectReason"] == \
        "would_take_liquidity"


async def test_a_replace_below_what_filled_meanwhile_is_refused_and_the_order_lives_on(
        local_venue: LocalVenue, alice: Rest, bob: Rest) -> None:
    buy = await accepted(alice, **order("buy", "60.00", "10"))
    await until(alice, buy, status="new")
    with writer_paused(local_venue):
        await accepted(bob, **order("sell", "60.00", "4"))
        await engine_says(local_venue, buy, "partially_filled", cum_qty=4)
        # The gateway still reads nothing filled: 3 passes its check, not the engine's.
        assert (await alice.replace(buy, quantity="3"))[0] == 202
    report = await alice.report(buy, "replace_rejected")
    assert report | {"orderStatus": "partially_filled", "rejectReason": "replace_below_filled",
                     "quantity": "10", "cumQty": "4", "leavesQty": "6"} == report
    await until(alice, buy, status="partially_filled", quantity="10", leavesQty="6")
    # It lives on, as it was: a cancel now takes it.
    assert (await alice.cancel(buy))[0] == 202
    await until(alice, buy, status="canceled", cumQty="4")


async def test_a_replace_keeps_what_an_earlier_replace_changed_before_postgres_heard_of_it(
        local_venue: LocalVenue, alice: Rest) -> None:
    """Each replace gives one term; the gateway still reads the order as placed, and
    the term a replace leaves out must stay as the earlier replace made it, not go back."""
    buy = await accepted(alice, **order("buy", "41.00", "10"))
    sell = await accepted(alice, **order("sell", "90.00", "10"))
    for placed in (buy, sell):
        await until(alice, placed, status="new")
    with writer_paused(local_venue):
        assert (await alice.replace(buy, quantity="2"))[0] == 202
        await engine_says(local_venue, buy, "new", quantity=2)
        assert (await alice.replace(buy, price="41.50"))[0] == 202
        assert (await alice.replace(sell, price="89.50"))[0] == 202
        await engine_says(local_venue, sell, "new", price=8950)
        assert (await alice.replace(sell, quantity="3"))[0] == 202
        await engine_says(local_venue, buy, "new", price=4150, quantity=2, leaves_qty=2)
        await engine_says(local_venue, sell, "new", price=8950, quantity=3, leaves_qty=3)
    await until(alice, buy, status="new", price="41.50", quantity="2", leavesQty="2")
    await until(alice, sell, status="new", price="89.50", quantity="3", leavesQty="3")


async def test_a_cancel_or_replace_of_no_order_of_the_account_is_unknown(
        local_venue: LocalVenue, alice: Rest, bob: Rest) -> None:
    bobs = await accepted(bob, **order("buy", "70.00", "1"))
    await until(bob, bobs, status="new")
    for code, answer in (await alice.cancel("987654321"), await alice.cancel(bobs),
                         await alice.cancel(client_order_id="never-sent"),
                         await alice.replace(bobs, price="71.00")):
        assert code == 404, answer
        assert answer["reason"] == "unknown_order", answer
    await until(bob, bobs, status="new", price="70.00")


async def test_the_issues_curl_sequence_leaves_the_fill_and_persists_what_follows(
        local_venue: LocalVenue, http: httpx.AsyncClient) -> None:
    """Found by a new user: sell, crossing buy, cancel of the sell a few milliseconds
    later, with nothing paused. Whichever way the race goes, the sell is filled, the
    cancel is answered too late, and every order after it is persisted."""
    a, b = Rest(http, local_venue.keys["alice"]), Rest(http, local_venue.keys["bob"])
    sell = await accepted(a, **order("sell", "10.00", "5"))
    await accepted(b, **order("buy", "10.00", "5"))
    code, answer = await a.cancel(sell)
    await until(a, sell, status="filled", cumQty="5")
    if code == 202:  # the engine refused it
        row = await persisted_refusal(local_venue, sell, "cancel_rejected")
        assert (row["order_status"], row["reject_reason"]) == ("filled", "too_late_to_cancel")
    else:  # the gateway knew
        assert (code, answer["reason"], answer["status"]) == (409, "too_late_to_cancel",
                                                              "filled")
    later = [await accepted(b, **order("buy", f"{p}.00", "1")) for p in range(1, 6)]
    for order_id in later:
        await until(b, order_id, status="new")
    await nothing_set_aside(local_venue)


# --- races at random ------------------------------------------------------------------------

async def test_random_concurrent_orders_cancels_and_replaces_end_as_the_engine_says(
        local_venue: LocalVenue, http: httpx.AsyncClient) -> None:
    """Several accounts send new orders, cancels and replaces at random, by order id and
    by clientOrderId, none waiting for the one before, so that requests overtake the
    reports of what they name. At the end every order in Postgres is as the engine says
    it is, and the invariants hold."""
    rng = random.Random(int(os.environ.get("VENUE_RACE_SEED", "7")))
    connection = await asyncpg.connect(local_venue.database_url)
    try:
        keys = dict(local_venue.keys)
        for name in ("carol", "dave"):
            keys[name] = (await create_account(connection, name))[1]
    finally:
        await connection.close()
    accounts = [Rest(http, key) for key in keys.values()]
    mine: list[list[tuple[str, str]]] = [[] for _ in accounts]  # (orderId, clientOrderId)
    seen: dict[str, int] = {}  # order id -> the highest status rank a client saw
    answers: dict[int, int] = {}
    symbols = ("AAPL", "BTC-USD")

    def new_order(i: int, n: int) -> dict[str, Any]:
        symbol = rng.choice(symbols)
        price = f"{rng.randint(95, 105)}.00"
        quantity = str(rng.randint(1, 5)) if symbol == "AAPL" else f"0.{rng.randint(1, 5)}"
        fields = {"symbol": symbol, "side": rng.choice(("buy", "sell")),
                  "quantity": quantity, "clientOrderId": f"r{i}-{n}"}
        kind = rng.random()
        if kind < 0.1:
            fields |= {"type": "market", "timeInForce": "ioc"}
        else:
            fields |= {"price": price,
                       "timeInForce": "ioc" if kind < 0.2 else "gtc",
                       "postOnly": 0.2 <= kind < 0.25}
        return fields

    async def one_account(i: int, requests: int) -> None:
        client = accounts[i]
        pending: set[asyncio.Task] = set()
        for n in range(requests):
            choice = rng.random()
            if choice < 0.5 or not mine[i]:
                async def send(fields=new_order(i, n)):
                    code, answer = await client.new(**fields)
                    answers[code] = answers.get(code, 0) + 1
                    if code == 202:
                        mine[i].append((answer["orderId"], fields["clientOrderId"]))
                task = send()
            else:
                order_id, client_order_id = rng.choice(mine[i][-30:])
                by_id = rng.random() < 0.5
                ref = {"order_id": order_id} if by_id else {"client_order_id": client_order_id}
                if choice < 0.75:
                    task = client.cancel(**ref)
                else:
                    terms = rng.choice(({"price": f"{rng.randint(95, 105)}.00"},
                                        {"quantity": str(rng.randint(1, 6))}))
                    task = client.replace(**ref, **terms)

                async def count(call=task):
                    code, _ = await call
                    answers[code] = answers.get(code, 0) + 1
                task = count()
            pending.add(asyncio.ensure_future(task))
            if len(pending) >= 8:  # up to 8 in flight per account, none waiting its turn
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for finished in done:
                    finished.result()
            if n % 50 == 0 and mine[i]:  # a client watching its orders
                order_id = rng.choice(mine[i])[0]
                if (state := await client.get(order_id)) is not None:
                    seen[order_id] = max(seen.get(order_id, 0), RANK[state["status"]])
        for finished in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(finished, Exception):
                raise finished

    per_account = max(1, RANDOM_REQUESTS // len(accounts))
    await asyncio.gather(*(one_account(i, per_account) for i in range(len(accounts))))
    assert set(answers) <= {202, 404, 409, 422}, answers  # 422: a replace of a market order
    ids = [order_id for orders in mine for order_id, _ in orders]

    # Every order in Postgres, as the engine says it is.
    connection = await asyncpg.connect(local_venue.database_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            rows = {str(r["order_id"]): r for r in await connection.fetch(
                "SELECT * FROM orders WHERE order_id = ANY($1::bigint[])", [int(i) for i in ids])}
            engine = {order_id: await engine_order(local_venue, order_id) for order_id in ids}
            differ = [order_id for order_id in ids if not _same(rows.get(order_id),
                                                                 engine[order_id])]
            if not differ or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert not differ, [(rows.get(i), engine[i]) for i in differ[:5]]

        for order_id, row in rows.items():
            if row["status"] in DONE:
                assert row["leaves_qty"] == 0, dict(row)
            else:
                assert row["quantity"] == row["cum_qty"] + row["leaves_qty"], dict(row)
            assert RANK[row["status"]] >= seen.get(order_id, 0), dict(row)
        # No status ever went back, in the order of the engine's reports.
        executions = await connection.fetch(
            "SELECT order_id, order_status FROM executions WHERE order_id = ANY($1::bigint[]) "
            "AND exec_type NOT IN ('cancel_rejected', 'replace_rejected') "
            "ORDER BY partition, sequence", [int(i) for i in ids])
        reached: dict[int, int] = {}
        for execution in executions:
            rank = RANK[execution["order_status"]]
            assert rank >= reached.get(execution["order_id"], 0), dict(execution)
            reached[execution["order_id"]] = rank
        unbalanced = await connection.fetch("""
            SELECT o.instrument_id,
                   sum(e.last_qty) FILTER (WHERE o.side = 'buy') AS bought,
                   sum(e.last_qty) FILTER (WHERE o.side = 'sell') AS sold
            FROM executions e JOIN orders o USING (order_id)
            WHERE e.exec_type = 'trade' GROUP BY o.instrument_id
            HAVING sum(e.last_qty) FILTER (WHERE o.side = 'buy')
                   IS DISTINCT FROM sum(e.last_qty) FILTER (WHERE o.side = 'sell')""")
        assert unbalanced == []
        refused = await connection.fetchval(
            "SELECT count(*) FROM executions WHERE exec_type IN "
            "('cancel_rejected', 'replace_rejected')")
    finally:
        await connection.close()
    assert len(rows) == len(ids)
    print(f"{len(ids)} orders, answers {answers}, {refused} refused by the engine")
    await nothing_set_aside(local_venue)


def _same(row: asyncpg.Record | None, engine: pb.OrderState) -> bool:
    """The order's row holds what the engine says of it (a forgotten order: no claim)."""
    if engine.known == pb.OrderState.KNOWN_UNKNOWN:
        return row is not None
    if row is None:
        return False
    state = engine.order
    return (row["status"], row["price"], row["quantity"], row["cum_qty"], row["leaves_qty"],
            row["cum_notional"]) == (
        ORDER_STATUS_WORDS[state.order_status], state.price, state.quantity, state.cum_qty,
        state.leaves_qty, state.cum_notional)


# --- a stuck part is visible ------------------------------------------------------------------

async def ready(http: httpx.AsyncClient) -> tuple[int, dict[str, str]]:
    response = await http.get("/readyz")
    return response.status_code, response.json()["checks"]


async def readiness_until(http: httpx.AsyncClient, code: int, timeout: float = 30
                          ) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        got, checks = await ready(http)
        if got == code or time.monotonic() > deadline:
            assert got == code, checks
            return checks
        await asyncio.sleep(0.25)


async def test_readiness_goes_red_when_the_writer_stops_and_back_when_it_resumes(
        local_venue: LocalVenue, http: httpx.AsyncClient) -> None:
    await readiness_until(http, 200)
    with writer_paused(local_venue):
        checks = await readiness_until(http, 503)
        assert "no writer has reported" in checks["persistence"]
        assert checks["matching"] == "ok"
    await readiness_until(http, 200)


async def test_readiness_goes_red_when_the_engine_is_gone(local_venue: LocalVenue,
                                                          http: httpx.AsyncClient) -> None:
    await readiness_until(http, 200)
    local_venue.engines[0].kill()
    checks = await readiness_until(http, 503)
    assert "cannot reach engine partition 0" in checks["matching"]
    local_venue.engines[0].start()
    await readiness_until(http, 200)
