"""Shard leases against a real Redis: one holder per shard, shared fairly, taken over on death."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from venue.submitter.leases import ShardLeases
from venue.contract.keys import Keys


def leases(redis: Redis, owner: str, lease_ms: int = 60_000) -> ShardLeases:
    return ShardLeases(redis, Keys("t"), list(range(4)), owner, lease_ms)


async def test_a_lone_submitter_takes_every_shard(redis_url: str):
    redis = Redis.from_url(redis_url)
    assert await leases(redis, "a").refresh(4) == {0, 1, 2, 3}
    await redis.aclose()


async def test_no_shard_is_held_by_two_submitters_and_a_newcomer_gets_its_share(redis_url):
    redis = Redis.from_url(redis_url)
    a, b = leases(redis, "a"), leases(redis, "b")
    await a.refresh(4)
    assert await b.refresh(4) == set()  # all taken; a gives back what is over its share
    for shard in a.over_share(4, await a.live_submitters()):
        await a.release(shard)
    assert await b.refresh(4) == {2, 3}
    assert await a.refresh(4) == {0, 1}
    assert a.held.isdisjoint(b.held)
    await redis.aclose()


async def test_a_dead_submitters_shards_are_taken_when_its_lease_expires(redis_url):
    redis = Redis.from_url(redis_url)
    dead = leases(redis, "dead", lease_ms=200)
    await dead.refresh(4)
    survivor = leases(redis, "survivor")
    assert await survivor.refresh(4) == set()
    await asyncio.sleep(0.3)  # the dead one stopped renewing; its leases ran out
    assert await survivor.refresh(4) == {0, 1, 2, 3}
    await redis.aclose()


async def test_a_lost_lease_is_not_renewed(redis_url):
    redis = Redis.from_url(redis_url)
    a = leases(redis, "a")
    await a.refresh(4)
    await redis.set(Keys("t").lease(0), "someone-else")
    assert await a.refresh(4) == {1, 2, 3}
    assert await redis.get(Keys("t").lease(0)) == b"someone-else"
    await redis.aclose()


async def test_a_submitter_keeps_leasing_through_a_redis_outage(redis_server):
    from venue.contract.config import Settings
    from venue.submitter.process import Submitter

    submitter = Submitter(Settings(redis_url=redis_server.url, lease_ms=600))
    stop = asyncio.Event()
    leasing = asyncio.create_task(submitter._keep_leases(stop))
    try:
        await asyncio.sleep(0.3)
        assert submitter.held == {0, 1, 2, 3}
        redis_server.kill()
        await asyncio.sleep(1.0)  # its leases run out meanwhile
        redis_server.start()
        await asyncio.sleep(1.0)
        assert not leasing.done()
        assert submitter.held == {0, 1, 2, 3}
    finally:
        stop.set()
        await leasing
        await submitter.redis.aclose()
