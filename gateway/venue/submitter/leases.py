"""Shard leases: each shard is consumed by one submitter at a time.

A lease is a Redis key holding its owner's name with an expiry; the owner renews it,
and when the owner dies it expires and another submitter takes the shard. Live
submitters heartbeat in a sorted set, so each takes a fair share (ceil(shards / live))
and gives back what is over it: a new submitter gets work without anyone dying.

Correctness does not rest on the lease (the engine's per-shard high-water mark makes a
command sent twice apply once); the lease keeps two submitters from doing the same work.
"""

from __future__ import annotations

import math
import time

from redis.asyncio import Redis

from venue.contract.keys import Keys

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def fair_share(shards: int, live_submitters: int) -> int:
    return math.ceil(shards / max(1, live_submitters))


class ShardLeases:
    def __init__(self, redis: Redis, keys: Keys, shards: list[int], owner: str,
                 lease_ms: int) -> None:
        self.redis = redis
        self.keys = keys
        self.shards = shards
        self.owner = owner
        self.lease_ms = lease_ms
        self.held: set[int] = set()
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @property
    def _members(self) -> str:
        return f"{self.keys.prefix}:submitters"

    async def refresh(self, total_shards: int) -> set[int]:
        """Heartbeat, renew what we hold, take free shards up to our fair share."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._members, {self.owner: now_ms + self.lease_ms})
            pipe.zremrangebyscore(self._members, "-inf", now_ms)
            pipe.zcard(self._members)
            _, _, live = await pipe.execute()
        for shard in sorted(self.held):
            if not await self._renew(keys=[self.keys.lease(shard)],
                                     args=[self.owner, self.lease_ms]):
                self.held.discard(shard)
        share = fair_share(total_shards, live)
        for shard in self.shards:
            if len(self.held) >= share:
                break
            if shard not in self.held and await self.redis.set(
                    self.keys.lease(shard), self.owner, nx=True, px=self.lease_ms):
                self.held.add(shard)
        return set(self.held)

    def over_share(self, total_shards: int, live: int) -> list[int]:
        extra = len(self.held) - fair_share(total_shards, live)
        return sorted(self.held)[-extra:] if extra > 0 else []

    async def live_submitters(self) -> int:
        return max(1, await self.redis.zcount(self._members, int(time.time() * 1000), "+inf"))

    async def release(self, shard: int) -> None:
        await self._release(keys=[self.keys.lease(shard)], args=[self.owner])
        self.held.discard(shard)

    async def release_all(self) -> None:
        for shard in sorted(self.held):
            await self.release(shard)
        await self.redis.zrem(self._members, self.owner)
