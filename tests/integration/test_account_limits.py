"""Per-account limits on a gateway: orders past the account's rate get 429 with
Retry-After and reason account_rate (a batch larger than the burst, which never could
pass, 422 batch_size), and nothing of them is queued;
another account is not held back; a WebSocket past the account's count is refused; an
order past the account's open orders gets 429 with reason account_open_orders, exactly
at the limit however many gateways race, until an order closes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
import uvicorn
from websockets.asyncio.client import connect

from venue.accounts import create_account
from venue.api.app import create_app
from venue.contract.config import Settings, VenueConfig
from venue.contract.entries import FIELD_COMMANDS, split_frames
from venue.contract.keys import Keys
from venue.enginepb import engine_pb2 as pb

ORDER = {"symbol": "BTC-USD", "side": "buy", "price": "100.00", "quantity": "1"}
KEYS = Keys(VenueConfig().name)


async def _queued(redis: Redis) -> int:
    return sum([await redis.xlen(KEYS.orders(s)) for s in range(VenueConfig().shards)])


async def _accounts(database_url: str, *names: str) -> list[tuple[int, str]]:
    """New accounts: (account id, key) each."""
    db = await asyncpg.connect(database_url)
    try:
        return [await create_account(db, name) for name in names]
    finally:
        await db.close()


@asynccontextmanager
async def _gateway(redis_url: str, database_url: str, **limits) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway app with these settings, and an HTTP client of it."""
    app = create_app(Settings(redis_url=redis_url, database_url=database_url, **limits))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        yield client


async def test_orders_past_an_accounts_rate_are_refused_and_not_queued(redis_url, database_url):
    (_, alice), (_, bob) = await _accounts(database_url, "alice", "bob")
    redis = Redis.from_url(redis_url)
    async with _gateway(redis_url, database_url, account_orders_per_s=0.01,
                        account_burst=5) as client:
        for serial in range(5):
            answer = await client.post("/v1/orders", json=ORDER | {"clientOrderId": f"a{serial}"},
                                       headers={"Authorization": f"Bearer {alice}"})
            assert answer.status_code == 202, answer.text
        before = await _queued(redis)
        refused = await client.post("/v1/orders", json=ORDER | {"clientOrderId": "a5"},
                                    headers={"Authorization": f"Bearer {alice}"})
        assert refused.status_code == 429, refused.text
        assert refused.json()["reason"] == "account_rate"
        assert int(refused.headers["Retry-After"]) >= 1
        batch = await client.post("/v1/orders/batch", json={"orders": [ORDER, ORDER]},
                                  headers={"Authorization": f"Bearer {alice}"})
        assert batch.status_code == 429 and batch.json()["reason"] == "account_rate"
        assert await _queued(redis) == before  # nothing of them queued
        big = await client.post("/v1/orders/batch", json={"orders": [ORDER] * 6},
                                headers={"Authorization": f"Bearer {bob}"})
        # Larger than the burst: it could never pass, so it is not told to retry.
        assert big.status_code == 422 and "Retry-After" not in big.headers, big.text
        [problem] = big.json()["detail"]
        assert (problem["loc"], problem["type"]) == (["body", "orders"], "batch_size")
        assert problem["msg"] == ("a batch holds 1 to 5 orders (the burst of this account "
                                  "here), not 6")
        ok = await client.post("/v1/orders/batch", json={"orders": [ORDER] * 5},
                               headers={"Authorization": f"Bearer {bob}"})
        assert ok.status_code == 200 and ok.json()["accepted"] == 5  # bob's own bucket
    await redis.aclose()


async def test_a_websocket_past_an_accounts_count_is_refused(redis_url, database_url):
    (_, key), = await _accounts(database_url, "carol")
    app = create_app(Settings(redis_url=redis_url, database_url=database_url,
                              account_ws_connections=1))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the gateway did not start"
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url, headers = f"ws://127.0.0.1:{port}/v1/ws", {"Authorization": f"Bearer {key}"}
    try:
        async with connect(url, additional_headers=headers) as first:
            assert json.loads(await first.recv())["type"] == "authenticated"
            async with connect(url, additional_headers=headers) as second:
                answer = json.loads(await second.recv())
                assert answer["type"] == "reject" and answer["reason"] == "account_connections"
        async with connect(url, additional_headers=headers) as again:  # one closed
            assert json.loads(await again.recv())["type"] == "authenticated"
    finally:
        server.should_exit = True
        await serving


# --- open orders ------------------------------------------------------------------------

def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _new_orders_queued(redis: Redis) -> int:
    """New orders in the streams: what the engine would be sent."""
    count = 0
    for shard in range(VenueConfig().shards):
        for _, fields in await redis.xrange(KEYS.orders(shard)):
            count += sum(pb.Command.FromString(c).WhichOneof("body") == "new_order"
                         for c in split_frames(fields[FIELD_COMMANDS.encode()]))
    return count


async def test_orders_past_an_accounts_open_orders_are_refused_and_not_queued(
        redis_url, database_url):
    (_, alice), (bob_id, bob) = await _accounts(database_url, "alice", "bob")
    redis = Redis.from_url(redis_url)
    async with _gateway(redis_url, database_url, account_open_orders=3) as client:
        for serial in range(3):
            answer = await client.post("/v1/orders", headers=_headers(alice),
                                       json=ORDER | {"clientOrderId": f"o{serial}"})
            assert answer.status_code == 202, answer.text
        refused = await client.post("/v1/orders", headers=_headers(alice),
                                    json=ORDER | {"clientOrderId": "o3"})
        assert refused.status_code == 429, refused.text
        assert refused.json()["reason"] == "account_open_orders"
        assert refused.headers["Retry-After"] == "1"
        # A repeat of a queued order is still its duplicate, not refused.
        again = await client.post("/v1/orders", headers=_headers(alice),
                                  json=ORDER | {"clientOrderId": "o0"})
        assert again.status_code == 202 and again.json()["duplicate"] is True
        # A batch, with and without clientOrderIds (the C path and the Python path):
        # each order refused on its own, 429 as none was queued.
        for orders in ([ORDER | {"clientOrderId": "b1"}, ORDER | {"clientOrderId": "b2"}],
                       [ORDER, ORDER]):
            batch = await client.post("/v1/orders/batch", headers=_headers(alice),
                                      json={"orders": orders})
            assert batch.status_code == 429, batch.text
            body = batch.json()
            assert (body["accepted"], body["rejected"]) == (0, 2)
            assert {e["type"] for r in body["results"] for e in r["errors"]} == {
                "account_open_orders"}
            assert body["results"][1]["errors"][0]["loc"] == ["body", "orders", 1]
        assert await _new_orders_queued(redis) == 3
        # The refused clientOrderId was not claimed: once there is room, it is new.
        bob_batch = await client.post("/v1/orders/batch", headers=_headers(bob), json={
            "orders": [ORDER | {"clientOrderId": f"b{n}"} for n in range(5)]})
        assert bob_batch.json()["accepted"] == 3  # bob's own limit, the rest refused
        assert [r["status"] for r in bob_batch.json()["results"]] == ["pending_new"] * 3 + [
            "rejected"] * 2
        assert bob_batch.status_code == 200 and bob_batch.headers["Retry-After"] == "1"
        open_ids = await redis.smembers(KEYS.open_orders(bob_id))
        await redis.srem(KEYS.open_orders(bob_id), *open_ids)  # as the writer does
        retry = await client.post("/v1/orders/batch", headers=_headers(bob), json={
            "orders": [ORDER | {"clientOrderId": f"b{n}"} for n in range(5)]})
        assert [r.get("duplicate") for r in retry.json()["results"]] == [True] * 3 + [False] * 2
    await redis.aclose()


async def test_two_gateways_at_once_never_let_an_account_past_its_open_orders(
        redis_url, database_url):
    """Single orders and batches of one account from two gateways, all at once: exactly
    the limit is queued, whichever gateway each lands on."""
    [(account_id, key)] = await _accounts(database_url, "dora")
    redis = Redis.from_url(redis_url)
    async with _gateway(redis_url, database_url, account_open_orders=50) as first, \
            _gateway(redis_url, database_url, account_open_orders=50) as second:
        clients = [first, second]

        async def single(client: httpx.AsyncClient, n: int) -> int:
            answer = await client.post("/v1/orders", headers=_headers(key),
                                       json=ORDER | {"clientOrderId": f"s{n}"})
            assert answer.status_code in (202, 429), answer.text
            return int(answer.status_code == 202)

        async def batch(client: httpx.AsyncClient, n: int) -> int:
            answer = await client.post("/v1/orders/batch", headers=_headers(key), json={
                "orders": [ORDER | {"clientOrderId": f"b{n}-{i}", "symbol": symbol}
                           for i, symbol in enumerate(["BTC-USD", "ETH-USD"] * 3)]})
            assert answer.status_code in (200, 429), answer.text
            return answer.json()["accepted"]

        accepted = await asyncio.gather(*(
            (single if n % 2 else batch)(clients[n % 4 // 2], n) for n in range(40)))
    assert sum(accepted) == 50
    assert await redis.scard(KEYS.open_orders(account_id)) == 50
    assert await _new_orders_queued(redis) == 50
    await redis.aclose()


@pytest.mark.usefixtures("two_open_orders")
async def test_an_order_that_closes_makes_room_for_another(local_venue):
    """On a whole venue: at the limit, a new order is refused until one of the account's
    orders fills (or is canceled) and the writer has persisted it."""
    alice, bob = (local_venue.keys[name] for name in ("alice", "bob"))
    buy = {"symbol": "BTC-USD", "side": "buy", "price": "100.00", "quantity": "1"}
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=10) as client:
        ids = []
        for n in range(2):
            answer = await client.post("/v1/orders", headers=_headers(alice),
                                       json=buy | {"clientOrderId": f"rest{n}"})
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["orderId"])
        refused = await client.post("/v1/orders", headers=_headers(alice),
                                    json=buy | {"clientOrderId": "third"})
        assert refused.status_code == 429 and refused.json()["reason"] == "account_open_orders"
        # Bob's sell fills one of them; the other is canceled.
        sold = await client.post("/v1/orders", headers=_headers(bob), json=buy | {
            "side": "sell", "clientOrderId": "hit"})
        assert sold.status_code == 202, sold.text
        canceled = await client.delete(f"/v1/orders/{ids[1]}", headers=_headers(alice))
        assert canceled.status_code == 202, canceled.text
        accepted = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(accepted) < 2:
            assert asyncio.get_running_loop().time() < deadline, "no room came back"
            answer = await client.post("/v1/orders", headers=_headers(alice), json=buy | {
                "price": "90.00", "clientOrderId": f"later{len(accepted)}"})
            assert answer.status_code in (202, 429), answer.text
            if answer.status_code == 202:
                accepted.append(answer.json()["orderId"])
            else:
                await asyncio.sleep(0.05)
        third = await client.post("/v1/orders", headers=_headers(alice), json=buy | {
            "price": "90.00", "clientOrderId": "later2"})
        assert third.status_code == 429  # two open again: the two just placed


@pytest.fixture
def two_open_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    """A venue started after this lets each account have two orders open."""
    monkeypatch.setenv("VENUE_ACCOUNT_OPEN_ORDERS", "2")
