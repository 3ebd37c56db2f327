"""clientOrderId claims against a real Redis: a repeat within the dedup window is the
original order, one after twice the window is a new order, claim hashes expire on their
own, and one claim costs Redis no more than the bytes venue.queue.claims states."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from venue.contract.config import VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.queue.claims import CLAIM_BYTES, ClaimWindow
from venue.queue.order_queue import OrderQueue, QueuedCommand

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def command(order_id: int) -> bytes:
    return pb.Command(new_order=pb.NewOrder(order_id=order_id)).SerializeToString()


async def test_a_repeat_within_the_window_is_the_original_and_after_two_a_new_order(
        redis_url):
    window = ClaimWindow(1)
    queue = OrderQueue(Redis.from_url(redis_url), VenueConfig(), window)
    [first] = await queue.enqueue_entry(0, [QueuedCommand(1, command(1), 7, "x")], TRACE)
    [again] = await queue.enqueue_entry(0, [QueuedCommand(2, command(2), 7, "x")], TRACE)
    assert (first.duplicate, again.duplicate, again.order_id) == (False, True, 1)
    # Every claim hash expires by itself, two windows after its last claim.
    keys = [key async for key in queue.redis.scan_iter(match=f"{queue.keys.prefix}:coids:*")]
    ttls = [await queue.redis.pttl(key) for key in keys]
    assert keys and all(0 < ttl <= 2000 for ttl in ttls), ttls
    # Past two windows (and the start of a bucket), the same clientOrderId is new.
    await asyncio.sleep(2 * window.window_s - time.time() % window.window_s + 1.05)
    [later] = await queue.enqueue_entry(0, [QueuedCommand(3, command(3), 7, "x")], TRACE)
    assert (later.duplicate, later.order_id) == (False, 3)
    assert await queue.claimed_order_id(7, "x") == 3
    await queue.redis.aclose()


async def test_queues_of_different_windows_do_not_share_claims(redis_url):
    redis = Redis.from_url(redis_url)
    short = OrderQueue(redis, VenueConfig(), ClaimWindow(60))
    long = OrderQueue(redis, VenueConfig(), ClaimWindow(3600))
    await short.enqueue_entry(0, [QueuedCommand(1, command(1), 7, "y")], TRACE)
    assert await long.claimed_order_id(7, "y") is None  # a changed window starts afresh
    assert await short.claimed_order_id(7, "y") == 1
    await redis.aclose()


async def test_a_claim_costs_redis_no_more_than_the_stated_bytes(redis_url):
    queue = OrderQueue(Redis.from_url(redis_url), VenueConfig(), ClaimWindow(600))
    count = 10_000
    for start in range(0, count, 1000):
        await queue.enqueue_entry(0, [
            QueuedCommand(10**9 + i, command(10**9 + i), 7, f"cl-{i:017d}")  # 20 characters
            for i in range(start, start + 1000)], TRACE)
    [key] = [key async for key in queue.redis.scan_iter(match=f"{queue.keys.prefix}:coids:*")]
    per_claim = await queue.redis.memory_usage(key, samples=0) / count
    print(f"a claim costs {per_claim:.1f} bytes of Redis")  # the figure README.md gives
    assert per_claim <= CLAIM_BYTES
    await queue.redis.aclose()
