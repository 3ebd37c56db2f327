"""The whole order path with real processes: gateway -> Redis -> submitter -> engine ->
Redis -> writer -> Postgres, started the way `venue up` starts them."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx

from venue.local.venue import LocalVenue


def wait_for_status(client: httpx.Client, order_id: str, key: str, status: str,
                    timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        response = client.get(f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {key}"})
        if response.status_code == 200:
            seen = response.json()
            if seen["status"] == status:
                return seen
        time.sleep(0.05)
    raise AssertionError(f"order {order_id} never reached {status}; last seen {seen}")


def test_two_crossing_limit_orders_fill_at_the_resting_price(local_venue: LocalVenue):
    alice, bob = local_venue.keys["alice"], local_venue.keys["bob"]
    with httpx.Client(base_url=local_venue.gateway_url, timeout=10) as client:
        buy = client.post("/v1/orders", headers={"Authorization": f"Bearer {alice}"}, json={
            "symbol": "BTC-USD", "side": "buy", "type": "limit", "timeInForce": "gtc",
            "price": "30000.00", "quantity": "0.5", "clientOrderId": "buy-1"})
        assert buy.status_code == 202, buy.text
        buy_id = buy.json()["orderId"]
        # The buy rests first, so the trade happens at its price, not the seller's.
        wait_for_status(client, buy_id, alice, "new")
        sell = client.post("/v1/orders", headers={"Authorization": f"Bearer {bob}"}, json={
            "symbol": "BTC-USD", "side": "sell", "price": "29999.50", "quantity": "0.5"})
        assert sell.status_code == 202, sell.text
        sell_id = sell.json()["orderId"]

        bought = wait_for_status(client, buy_id, alice, "filled")
        sold = wait_for_status(client, sell_id, bob, "filled")

    for order in (bought, sold):
        assert order["cumQty"] == "0.5000"
        assert order["leavesQty"] == "0.0000"
        assert order["avgPx"] == "30000.00"
    assert bought["price"] == "30000.00" and sold["price"] == "29999.50"

    async def rows():
        connection = await asyncpg.connect(local_venue.database_url)
        try:
            orders = await connection.fetch(
                "SELECT order_id, status, cum_qty, leaves_qty FROM orders ORDER BY order_id")
            trades = await connection.fetch("SELECT * FROM trades")
            executions = await connection.fetchval("SELECT count(*) FROM executions")
            return orders, trades, executions
        finally:
            await connection.close()

    orders, trades, executions = asyncio.run(rows())
    assert [(r["order_id"], r["status"], r["cum_qty"], r["leaves_qty"]) for r in orders] == [
        (int(buy_id), "filled", 5000, 0), (int(sell_id), "filled", 5000, 0)]
    assert len(trades) == 1
    trade = trades[0]
    assert (trade["price"], trade["quantity"]) == (3_000_000, 5000)
    assert (trade["buy_order_id"], trade["sell_order_id"]) == (int(buy_id), int(sell_id))
    assert trade["aggressor_side"] == "sell"
    # new + new + one trade report per side
    assert executions == 4
