"""Shard lag against a real Redis, where the submitters confirm with XGROUP SETID and
Redis cannot count the lag itself."""

from __future__ import annotations


import pytest
from redis.asyncio import Redis

from venue.api.backpressure import STALL_S, STALLED_RETRY_AFTER_S
from venue.api.shard_lag import ShardLag
from venue.contract.config import VenueConfig
from venue.contract.keys import Keys, SUBMITTERS_GROUP

pytestmark = pytest.mark.integration

VENUE = VenueConfig(shards=1, partitions=1)
STREAM = Keys(VENUE.name).orders(0)


async def add(redis: Redis, count: int) -> list[bytes]:
    return [await redis.xadd(STREAM, {"cmds": b"x"}) for _ in range(count)]


async def redis_lag(redis: Redis) -> int | None:
    [group] = await redis.xinfo_groups(STREAM)
    return group["lag"]


async def test_lag_is_known_when_the_confirmed_id_is_mid_stream(redis: Redis) -> None:
    shard_lag = ShardLag(redis, VENUE, limit=5)
    await redis.xgroup_create(STREAM, SUBMITTERS_GROUP, id="0", mkstream=True)
    first = await add(redis, 10)
    await shard_lag.refresh()
    assert shard_lag.lags[0] == 10
    second = await add(redis, 10)
    await shard_lag.refresh()

    await redis.xgroup_setid(STREAM, SUBMITTERS_GROUP, first[-1])  # as a submitter confirms
    assert await redis_lag(redis) is None
    await shard_lag.refresh()
    assert shard_lag.lags[0] == 10  # a sample sits exactly at the confirmed id
    assert shard_lag.shard_refusal(0) is not None

    await redis.xgroup_setid(STREAM, SUBMITTERS_GROUP, second[-3])
    await shard_lag.refresh()
    assert 1 <= shard_lag.lags[0] <= 10  # between two samples: interpolated
    await redis.xgroup_setid(STREAM, SUBMITTERS_GROUP, second[-1])
    await shard_lag.refresh()
    assert shard_lag.lags[0] == 0
    assert shard_lag.shard_refusal(0) is None


async def test_lag_older_than_every_sample_is_counted(redis: Redis) -> None:
    await redis.xgroup_create(STREAM, SUBMITTERS_GROUP, id="0", mkstream=True)
    ids = await add(redis, 30)
    await redis.xgroup_setid(STREAM, SUBMITTERS_GROUP, ids[11])
    shard_lag = ShardLag(redis, VENUE, limit=100)  # a fresh gateway: no samples yet
    await shard_lag.refresh()
    assert shard_lag.lags[0] == 18


async def test_a_shard_without_stream_or_submitters_group(redis: Redis) -> None:
    shard_lag = ShardLag(redis, VENUE, limit=2)
    await shard_lag.refresh()
    assert shard_lag.lags[0] == 0
    await add(redis, 3)  # queued before any submitter created its group
    await shard_lag.refresh()
    assert shard_lag.lags[0] == 3
    assert shard_lag.shard_refusal(0) is not None


KEYS = Keys(VENUE.name)


async def queued(redis: Redis, shard: int, count: int) -> None:
    """The gateway has queued `count` new orders on `shard` in all."""
    await redis.hset(KEYS.queued_counts, shard, count)


async def persisted(redis: Redis, shard: int, count: int) -> None:
    """The writer has stored `count` of them (with a mark at an entry of the shard)."""
    await redis.hset(KEYS.persisted_marks, shard, f"1-{count} {count}")


async def test_too_many_unpersisted_orders_refuse_every_shard_until_the_writer_catches_up(
        redis: Redis) -> None:
    shard_lag = ShardLag(redis, VenueConfig(shards=4), limit=100, unpersisted_limit=50)
    await queued(redis, 0, 30)
    await queued(redis, 2, 20)
    await shard_lag.refresh()
    assert shard_lag.unpersisted == 50
    assert shard_lag.venue_refusal is None and shard_lag.shard_refusal(0) is None

    await queued(redis, 2, 50)
    await shard_lag.refresh()
    refusal = shard_lag.venue_refusal
    assert refusal is not None and refusal.reason == "persistence_behind"
    assert "80 orders await Postgres" in refusal.detail and "limit of 50" in refusal.detail
    assert refusal.retry_after == 1  # how fast the writer stores is not known yet
    assert all(shard_lag.shard_refusal(shard) == refusal for shard in range(4))

    shard_lag.persistence.refusing_since -= STALL_S  # refusing a while, nothing was stored
    await shard_lag.refresh()
    assert shard_lag.venue_refusal.retry_after == STALLED_RETRY_AFTER_S
    await persisted(redis, 0, 10)  # the writer stores some: 70 left, 20 over
    await shard_lag.refresh()
    assert 1 <= shard_lag.venue_refusal.retry_after < 5

    await persisted(redis, 2, 20)
    await shard_lag.refresh()
    assert shard_lag.unpersisted == 50 and shard_lag.venue_refusal is None
    assert all(shard_lag.shard_refusal(shard) is None for shard in range(4))


async def test_without_an_unpersisted_limit_only_shard_lag_refuses(redis: Redis) -> None:
    shard_lag = ShardLag(redis, VENUE, limit=100)
    await queued(redis, 1, 500)
    await shard_lag.refresh()
    assert shard_lag.unpersisted == 500 and shard_lag.shard_refusal(0) is None
