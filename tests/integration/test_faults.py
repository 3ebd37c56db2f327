"""Any one process of the venue killed with SIGKILL mid-load loses nothing.

A client keeps sending batches (and retries a failed one with the same clientOrderIds,
as a careful client would) while one part is killed and started again. Afterwards every
order that was accepted is in Postgres exactly once, every execution once, bought equals
sold on every instrument, and no status a client saw has gone back.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from venue.bench.audit import audit_orders
from venue.contract.config import Settings, VenueConfig
from venue.local.process import free_port
from venue.local.venue import LocalVenue
from venue.contract.entries import unpersisted_orders
from venue.contract.keys import Keys

KEYS = Keys(VenueConfig().name)
STATUS_ORDER = {"pending_new": 0, "new": 1, "partially_filled": 2, "filled": 3,
                "canceled": 3, "rejected": 3, "expired": 3}


@pytest.fixture
def venue(built_engine: Path):
    """A venue that owns its Redis and Postgres, so the test can kill them too."""
    data_dir = Path(tempfile.mkdtemp(prefix="venue-faults-"))
    data_dir.chmod(0o755)  # the private Postgres runs as `postgres` when we are root
    local = LocalVenue(Settings(redis_url=None, database_url=None, lease_ms=1500),
                       VenueConfig(), data_dir, gateway_port=free_port(),
                       say=lambda _: None, submitters=2)
    try:
        yield local.start()
    finally:
        local.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


class Client(threading.Thread):
    """Sends batches of crossing orders until stopped; remembers what it was told."""

    def __init__(self, venue: LocalVenue, batch_size: int = 50) -> None:
        super().__init__(daemon=True)
        self.venue = venue
        self.batch_size = batch_size
        self.accepted: set[int] = set()
        self.seen: dict[int, tuple[int, str]] = {}  # order id -> (status rank, cumQty)
        self.failures = 0
        self.stopping = threading.Event()

    def batch(self, serial: int, account: str) -> list[dict]:
        return [{"symbol": ("BTC-USD", "ETH-USD")[i % 2], "side": ("buy", "sell")[(i // 2) % 2],
                 "price": f"{100 + (serial + i) % 7}.00", "quantity": "1",
                 "clientOrderId": f"{account}-{serial}-{i}"} for i in range(self.batch_size)]

    def run(self) -> None:
        keys = list(self.venue.keys.items())
        with httpx.Client(base_url=self.venue.gateway_url, timeout=10) as http:
            serial = 0
            while not self.stopping.is_set():
                serial += 1
                account, key = keys[serial % len(keys)]
                orders = self.batch(serial, account)
                # Until the venue answers, the same orders again: their clientOrderIds
                # make sure a retry never becomes a second order.
                while not self.stopping.is_set():
                    try:
                        answer = http.post("/v1/orders/batch", json={"orders": orders},
                                           headers={"Authorization": f"Bearer {key}"})
                    except httpx.HTTPError:
                        answer = None
                    if answer is not None and answer.status_code == 200:
                        for result in answer.json()["results"]:
                            assert result["status"] == "pending_new", result
                            self.accepted.add(int(result["orderId"]))
                        break
                    self.failures += 1
                    time.sleep(0.2)
                self.look(http, key, serial)

    def look(self, http: httpx.Client, key: str, serial: int) -> None:
        """Read back a few orders, as a client watching its orders would."""
        for order_id in list(self.accepted)[-3:]:
            try:
                answer = http.get(f"/v1/orders/{order_id}",
                                  headers={"Authorization": f"Bearer {key}"})
            except httpx.HTTPError:
                continue
            if answer.status_code == 200:
                order = answer.json()
                self.seen[order_id] = (STATUS_ORDER[order["status"]], order["cumQty"])


def kill_and_restart(venue: LocalVenue, part: str) -> None:
    if part == "engine":
        venue.engines[0].kill()
        time.sleep(0.5)
        venue.engines[0].start()
    elif part == "redis":
        venue.redis.kill()
        time.sleep(0.5)
        venue.redis.start()
    elif part == "postgres":
        venue.postgres.kill()
        time.sleep(2)
        venue.postgres.start()
    else:  # a submitter (its peer takes its shards) or the writer
        venue.children[part].kill()
        time.sleep(2)
        venue.children[part].start()


async def left_unpersisted(venue: LocalVenue, wait_s: float = 20) -> tuple[int, int]:
    """What Redis still counts as unpersisted, and the queued runs it still keeps to read
    queued orders by, once they are nothing or `wait_s` has passed."""
    redis = Redis.from_url(venue.redis_url)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            left = (unpersisted_orders(await redis.hgetall(KEYS.queued_counts),
                                       await redis.hgetall(KEYS.persisted_marks)),
                    await redis.zcard(KEYS.queued_runs))
            if left == (0, 0) or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.5)
    finally:
        await redis.aclose()


def log_tails(venue: LocalVenue, lines: int = 12) -> str:
    """The last lines of every part's log: what a failed audit is read with."""
    logs = sorted((venue.data_dir / "logs").glob("*.log")) + sorted(
        venue.data_dir.glob("engine-*/*.log"))
    return "\n".join(f"--- {log.name}\n" + "\n".join(
        log.read_text(errors="replace").splitlines()[-lines:]) for log in logs)


@pytest.mark.parametrize("part", ["submitter-0", "writer", "engine", "redis", "postgres"])
def test_a_part_killed_mid_load_loses_nothing(venue: LocalVenue, part: str):
    client = Client(venue)
    client.start()
    try:
        time.sleep(2)
        assert client.accepted, "no order was accepted before the kill"
        kill_and_restart(venue, part)
        time.sleep(3)
        accepted_before_stop = len(client.accepted)
        time.sleep(1)
        assert len(client.accepted) > accepted_before_stop, "the venue did not recover"
    finally:
        client.stopping.set()
        client.join(timeout=30)

    audit = asyncio.run(audit_orders(venue.database_url, sorted(client.accepted), settle_s=60))
    assert audit["lost"] == 0, (audit, log_tails(venue))
    assert audit["duplicated"] == 0, audit
    assert audit["persisted_orders"] == len(client.accepted), audit
    assert audit["unbalanced_instruments"] == 0, audit
    assert audit["miscounted_candles"] == 0, audit
    # And Redis knows it: no order counts as unpersisted, none is kept to be read queued.
    assert asyncio.run(left_unpersisted(venue)) == (0, 0), log_tails(venue)

    # What a client saw never goes back: a later status, never an earlier one.
    with httpx.Client(base_url=venue.gateway_url, timeout=10) as http:
        for order_id, (rank, cum_qty) in list(client.seen.items())[:200]:
            for key in venue.keys.values():
                answer = http.get(f"/v1/orders/{order_id}",
                                  headers={"Authorization": f"Bearer {key}"})
                if answer.status_code == 200:
                    break
            assert answer.status_code == 200, f"order {order_id} vanished"
            final = answer.json()
            assert STATUS_ORDER[final["status"]] >= rank
            assert Decimal(final["cumQty"]) >= Decimal(cum_qty)
