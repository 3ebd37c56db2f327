"""Per-account limits on a gateway: orders past the account's rate and a batch past its
burst get 429 with Retry-After and reason account_rate, and nothing of them is queued;
another account is not held back; a WebSocket past the account's count is refused."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from redis.asyncio import Redis
from starlette.testclient import TestClient

from venue.accounts import create_account
from venue.api.app import create_app
from venue.contract.config import Settings, VenueConfig
from venue.contract.keys import Keys

ORDER = {"symbol": "BTC-USD", "side": "buy", "price": "100.00", "quantity": "1"}
KEYS = Keys(VenueConfig().name)


async def _queued(redis: Redis) -> int:
    return sum([await redis.xlen(KEYS.orders(s)) for s in range(VenueConfig().shards)])


async def test_orders_past_an_accounts_rate_are_refused_and_not_queued(redis_url, database_url):
    db = await asyncpg.connect(database_url)
    _, alice = await create_account(db, "alice")
    _, bob = await create_account(db, "bob")
    await db.close()
    redis = Redis.from_url(redis_url)
    app = create_app(Settings(redis_url=redis_url, database_url=database_url,
                              account_orders_per_s=0.01, account_burst=5))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
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
        assert big.status_code == 429 and "burst" in big.json()["detail"]
        ok = await client.post("/v1/orders/batch", json={"orders": [ORDER] * 5},
                               headers={"Authorization": f"Bearer {bob}"})
        assert ok.status_code == 200 and ok.json()["accepted"] == 5  # bob's own bucket
    await redis.aclose()


def test_a_websocket_past_an_accounts_count_is_refused(redis_url, database_url):
    async def account() -> str:
        db = await asyncpg.connect(database_url)
        try:
            return (await create_account(db, "carol"))[1]
        finally:
            await db.close()

    key = asyncio.run(account())
    app = create_app(Settings(redis_url=redis_url, database_url=database_url,
                              account_ws_connections=1))
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as client:
        with client.websocket_connect("/v1/ws", headers=headers) as first:
            assert first.receive_json()["type"] == "authenticated"
            with client.websocket_connect("/v1/ws", headers=headers) as second:
                answer = second.receive_json()
                assert answer["type"] == "reject" and answer["reason"] == "account_connections"
        with client.websocket_connect("/v1/ws", headers=headers) as again:  # one closed
            assert again.receive_json()["type"] == "authenticated"
