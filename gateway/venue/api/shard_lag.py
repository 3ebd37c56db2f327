"""The gateway's samples of how far the venue is behind, and the backpressure verdict on
them (venue.api.backpressure), refreshed by one background task per gateway process every
REFRESH_S: a request only reads the last verdict, so backpressure costs the order path a
lookup.

Each sample reads every shard's lag (venue.contract.lag, the estimate the operator's
autoscaler reads too) and the venue's unpersisted orders: the shards' queued counts less
their persisted marks (venue.contract.entries.unpersisted_orders).
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from venue.api.backpressure import (Persistence, Refusal, persistence_refusal, shard_refusal,
                                    smoothed)
from venue.contract.config import VenueConfig
from venue.contract.entries import unpersisted_orders
from venue.contract.keys import Keys
from venue.contract.lag import COUNT_AFTER, CountAfter, LagEstimator
from venue.contract.scripts import script
from venue.metrics import SHARD_LAG, SHARD_REFUSING, UNPERSISTED_ORDERS, UNPERSISTED_REFUSING

log = logging.getLogger(__name__)

REFRESH_S = 0.5


class ShardLag:
    """Every shard's lag and the venue's unpersisted orders, refreshed in the background,
    and the backpressure they imply."""

    def __init__(self, redis: Redis, venue: VenueConfig, limit: int,
                 refresh_s: float = REFRESH_S, unpersisted_limit: int | None = None) -> None:
        self.redis = redis
        self.keys = Keys(venue.name)
        self.shards = range(venue.shards)
        self.limit = limit
        self.unpersisted_limit = unpersisted_limit
        self.refresh_s = refresh_s
        self.lags: dict[int, int] = {}
        self.unpersisted = 0
        self.persistence = Persistence()
        self._refusing: dict[int, Refusal] = {}
        self._venue_refusal: Refusal | None = None
        self._estimator = LagEstimator(self.shards)
        self._read: dict[int, tuple[float, int]] = {}  # shard -> (when, entries read)
        self._drain_rate: dict[int, float] = {}  # shard -> entries confirmed per second
        self._count_after = redis.register_script(script(*COUNT_AFTER))

    def shard_refusal(self, shard: int) -> Refusal | None:
        """Why new orders for `shard` are refused and when to send them again, or None
        while the shard takes orders."""
        if self._venue_refusal is not None:
            return self._venue_refusal
        return self._refusing.get(shard) if self._refusing else None

    @property
    def venue_refusal(self) -> Refusal | None:
        """The refusal of every new order, whatever its shard, or None."""
        return self._venue_refusal

    def refusing_for_s(self) -> float:
        """How long every new order has been refused because persistence is behind (0
        while it is not)."""
        if self.persistence.refusing_since is None:
            return 0.0
        return time.monotonic() - self.persistence.refusing_since

    def start(self) -> None:
        """Sample in the background until close()."""
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(self._stop), name="venue-shard-lag")

    async def close(self) -> None:
        # The flag as well as the cancel: a cancel that lands while a Redis call times
        # out can come back as a TimeoutError, which the loop survives.
        self._stop.set()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except (RedisError, OSError) as error:
                # Orders fail with 503 meanwhile; the last verdicts stand until Redis is back.
                log.warning("shard lag not refreshed: %s", error)
            await asyncio.sleep(self.refresh_s)

    async def refresh(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in self.shards:
                pipe.xinfo_stream(self.keys.orders(shard))
                pipe.xinfo_groups(self.keys.orders(shard))
            pipe.hgetall(self.keys.queued_counts)
            pipe.hgetall(self.keys.persisted_marks)
            answers = await pipe.execute(raise_on_error=False)
        now = time.monotonic()
        for answer in answers[-2:]:
            if isinstance(answer, Exception):
                raise answer
        count = unpersisted_orders(answers[-2], answers[-1])
        self.unpersisted = count
        UNPERSISTED_ORDERS.set(count)
        self._venue_refusal = persistence_refusal(self.persistence, now, count,
                                                  self.unpersisted_limit)
        UNPERSISTED_REFUSING.set(0 if self._venue_refusal is None else 1)
        refusing: dict[int, Refusal] = {}
        for shard in self.shards:
            estimate = self._estimator.estimate(shard, answers[2 * shard], answers[2 * shard + 1])
            if isinstance(estimate, CountAfter):
                waiting = await self._count_after(keys=[self.keys.orders(shard)],
                                                  args=[estimate.delivered, self.limit + 1])
                estimate = self._estimator.counted(estimate, waiting)
            self.lags[shard] = estimate.lag
            self._note_read(shard, now, estimate.read)
            SHARD_LAG.labels(shard=str(shard)).set(estimate.lag)
            refusal = shard_refusal(shard, estimate.lag, self.limit, self._drain_rate.get(shard))
            SHARD_REFUSING.labels(shard=str(shard)).set(0 if refusal is None else 1)
            if refusal is not None:
                refusing[shard] = refusal
        self._refusing = refusing

    def _note_read(self, shard: int, now: float, read: int) -> None:
        before = self._read.get(shard)
        self._read[shard] = (now, read)
        if before is None or now <= before[0]:
            return
        self._drain_rate[shard] = smoothed(self._drain_rate.get(shard),
                                           max(0.0, (read - before[1]) / (now - before[0])))
