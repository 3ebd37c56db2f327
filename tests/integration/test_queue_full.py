"""A Redis at its memory limit: the gateway refuses new orders with 503 queue_full and a
Retry-After, on the single and batch paths alike, and loses nothing: every
order it answered 202 is queued, no refused one is, and orders flow again once Redis has
room."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.integration.conftest import Gateway

ORDER = {"symbol": "BTC-USD", "side": "buy", "price": "100.00", "quantity": "1"}


async def test_a_full_queue_refuses_orders_with_503_and_loses_none(gateway: Gateway) -> None:
    redis = gateway.redis
    accepted: list[str] = []
    refused = []
    used = (await redis.info("memory"))["used_memory"]
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", used + (2 << 20))
    try:
        for serial in range(100_000):
            response = await gateway.client.post(
                "/v1/orders", headers=gateway.auth(),
                json=ORDER | {"clientOrderId": f"full-{serial}"})
            if response.status_code == 202:
                accepted.append(response.json()["orderId"])
                continue
            refused.append((serial, response))
            if len(refused) == 3:
                break
        assert refused, "Redis never filled"
        for _, response in refused:
            assert response.status_code == 503, response.text
            assert response.json()["reason"] == "queue_full"
            assert int(response.headers["Retry-After"]) > 0
        batch = await gateway.client.post("/v1/orders/batch", headers=gateway.auth(),
                                          json={"orders": [ORDER, ORDER]})
        assert batch.status_code == 503 and batch.json()["reason"] == "queue_full"
    finally:
        await redis.config_set("maxmemory", 0)
    # Nothing lost, nothing half-queued: each 202 is in the queue, no refused one is.
    queue = gateway.app.state.order_queue
    for order_id in accepted[-50:]:
        assert await queue.queued_command(int(order_id)) is not None
    for serial, _ in refused:
        assert await queue.claimed_order_id(gateway.account_id, f"full-{serial}") is None
    again = await gateway.client.post("/v1/orders", headers=gateway.auth(),
                                      json=ORDER | {"clientOrderId": f"full-{refused[0][0]}"})
    assert again.status_code == 202 and again.json()["duplicate"] is False
