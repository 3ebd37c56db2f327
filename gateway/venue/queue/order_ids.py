"""Order ids: unique across the venue, reserved from Redis a block at a time."""

from __future__ import annotations

from redis.asyncio import Redis

from venue.contract.keys import Keys

ORDER_ID_BLOCK = 4096


class OrderIds:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        # Per shard (None: any), the next id of its block and the block's last.
        self._blocks: dict[int | None, list[int]] = {}

    async def take(self, count: int, shard: int | None = None) -> list[int]:
        """`count` venue-wide unique order ids; with `shard`, from a block of that
        shard's own, so that the orders one gateway queues on a shard have consecutive
        ids (one queued run per entry)."""
        ids: list[int] = []
        block = self._blocks.setdefault(shard, [0, -1])
        while len(ids) < count:
            if block[0] > block[1]:
                size = max(ORDER_ID_BLOCK, count - len(ids))
                last = await self.redis.incrby(self.keys.order_id_counter, size)
                block[:] = [last - size + 1, last]
            take = min(count - len(ids), block[1] - block[0] + 1)
            ids.extend(range(block[0], block[0] + take))
            block[0] += take
        return ids
