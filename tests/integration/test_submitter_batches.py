"""A submitter's engine batches stay bounded when it has fallen behind: it reads at most
submit_entries stream entries a shard for one batch, so a backlog reaches the engine in
several batches, every order once and in queue order, and no pass of the matching
thread (whose events a journal follower, the market feed, gets only once the whole pass
is journaled) takes more than that."""

from __future__ import annotations

import asyncio
import time

from venue.contract.config import Settings, VenueConfig
from venue.contract.entries import FIELD_BATCH
from venue.contract.keys import Keys
from venue.enginepb import engine_pb2 as pb
from venue.submitter.process import Submitter

KEYS = Keys(VenueConfig().name)
REQUESTS = 40
ORDERS_PER_REQUEST = 10


async def _engine_batches(gateway) -> list[pb.ReportBatch]:
    """The engine batches the submitter published (one events-stream entry each)."""
    entries = await gateway.redis.xrange(KEYS.events(0))
    return [pb.ReportBatch.FromString(fields[FIELD_BATCH.encode()]) for _, fields in entries]


def _new_orders(batch: pb.ReportBatch) -> list[str]:
    return [e.report.client_order_id for e in batch.events
            if e.HasField("report") and e.report.exec_type == pb.EXEC_TYPE_NEW]


async def test_a_backlog_reaches_the_engine_in_batches_of_at_most_submit_entries_entries(
        gateway, engine, redis_url: str, database_url: str) -> None:
    settings = Settings(redis_url=redis_url, database_url=database_url,
                        engines=engine.address, submit_entries=8)
    sent = []
    for request in range(REQUESTS):  # queued while no submitter runs: a backlog
        orders = [{"symbol": "BTC-USD", "side": "buy", "price": f"{100 + n}.00", "quantity": "1",
                   "clientOrderId": f"r{request}-{n}"} for n in range(ORDERS_PER_REQUEST)]
        answer = await gateway.client.post("/v1/orders/batch", json={"orders": orders},
                                           headers=gateway.auth())
        assert answer.status_code == 200 and answer.json()["accepted"] == ORDERS_PER_REQUEST, \
            answer.text
        sent += [order["clientOrderId"] for order in orders]

    submitter = Submitter(settings)
    stop = asyncio.Event()
    running = asyncio.create_task(submitter.run(stop))
    try:
        deadline = time.monotonic() + 30
        while sum(len(_new_orders(b)) for b in await _engine_batches(gateway)) < len(sent):
            assert not running.done(), running
            assert time.monotonic() < deadline, "the backlog did not reach the engine in 30 s"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
        await submitter.redis.aclose()

    batches = [_new_orders(b) for b in await _engine_batches(gateway)]
    assert max(len(b) for b in batches) <= 8 * ORDERS_PER_REQUEST, [len(b) for b in batches]
    assert len(batches) >= REQUESTS // 8
    assert [order for batch in batches for order in batch] == sent  # each once, in order
