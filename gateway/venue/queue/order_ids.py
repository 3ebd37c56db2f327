"""Order ids: unique across the venue, reserved from Redis a block at a time.

An order id names its UTC day: it is ORDER_IDS_PER_DAY x the day (days since 1970-01-01)
plus a count of that day's ids (one Redis counter per day). Postgres keeps orders and
their executions in a partition per day of order id (venue.db.partitions), so a read by
id looks in one partition however many days are kept. Ids stay below 2^53, which a
JavaScript number holds exactly, until the year 3405.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from venue.contract.keys import Keys

ORDER_ID_BLOCK = 4096
ORDER_IDS_PER_DAY = 1 << 34  # 17.2 billion: a whole day at 198,000 orders/s
SECONDS_PER_DAY = 86_400
# A day's counter outlives its day (a gateway may take a block just before midnight).
_COUNTER_TTL_S = 3 * SECONDS_PER_DAY


def utc_day(at: float | None = None) -> int:
    """The UTC day of a Unix time (now by default), as days since 1970-01-01."""
    return int((time.time() if at is None else at) // SECONDS_PER_DAY)


def first_order_id(day: int) -> int:
    """The lowest order id of a UTC day (the day's ids are below the next day's)."""
    return day * ORDER_IDS_PER_DAY


def day_of_order_id(order_id: int) -> int:
    return order_id // ORDER_IDS_PER_DAY


class OrderIdsExhausted(RuntimeError):
    pass


class OrderIds:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        # Per shard (None: any), the next id of its block and the block's last.
        self._blocks: dict[int | None, list[int]] = {}

    async def take(self, count: int, shard: int | None = None) -> list[int]:
        """`count` venue-wide unique order ids; with `shard`, from a block of that
        shard's own, so that the orders one gateway queues on a shard have consecutive
        ids (one queued run per entry). A block is of the day it was reserved in."""
        ids: list[int] = []
        block = self._blocks.setdefault(shard, [0, -1])
        while len(ids) < count:
            if block[0] > block[1]:
                day = utc_day()
                size = max(ORDER_ID_BLOCK, count - len(ids))
                counter = self.keys.order_id_counter(day)
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.incrby(counter, size)
                    pipe.expire(counter, _COUNTER_TTL_S)
                    last, _ = await pipe.execute()
                if last >= ORDER_IDS_PER_DAY:
                    raise OrderIdsExhausted(f"the order ids of day {day} are used up")
                block[:] = [first_order_id(day) + last - size + 1, first_order_id(day) + last]
            take = min(count - len(ids), block[1] - block[0] + 1)
            ids.extend(range(block[0], block[0] + take))
            block[0] += take
        return ids
