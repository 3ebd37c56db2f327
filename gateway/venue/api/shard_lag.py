"""Backpressure: how far the venue is behind, and when the gateway stops taking new orders.

Two limits, sampled by one background task per gateway process every REFRESH_S; a
request only reads the last verdict, so backpressure costs the order path a lookup.

- A shard's lag: entries of its order stream that the `submitters` group has not
  confirmed. Over the limit, that shard refuses new orders (`shard_busy`).
- The venue's unpersisted orders: orders queued that the writer has not yet put in
  Postgres (each shard's queued count less its persisted mark's). Over the limit, every
  shard refuses new orders (`persistence_behind`): otherwise a venue taking orders
  faster than Postgres stores them grows its Redis without bound.

Redis reports the lag itself (XINFO GROUPS `lag`) only while it can count it: after
XGROUP SETID to an id in the middle of the stream, which is how the submitters confirm,
it answers null. Then the lag is interpolated from this task's own samples of the
stream's (last id, entries added): both come from Redis, so they share its clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from bisect import bisect_right
from collections import deque
from typing import NamedTuple

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from venue.contract.config import VenueConfig
from venue.metrics import SHARD_LAG, SHARD_REFUSING, UNPERSISTED_ORDERS, UNPERSISTED_REFUSING
from venue.contract.entries import parse_stream_id, unpersisted_orders
from venue.contract.keys import Keys, SUBMITTERS_GROUP

log = logging.getLogger(__name__)

REFRESH_S = 0.5
# Retry-After when the submitters' drain rate is unknown (none seen yet, or stalled: a
# lease expires within seconds and another submitter takes the shard).
STALLED_RETRY_AFTER_S = 5
MAX_RETRY_AFTER_S = 30
# Refusing for this long without the unpersisted count falling: the writer is stalled.
STALL_S = 2.0
_HISTORY = 1200  # samples kept per shard: ten minutes at REFRESH_S

# Counts entries after an id, up to a cap: the last resort when the lag can be neither
# read nor interpolated (the confirmed id is older than this process's samples).
_COUNT_AFTER = """
local cap = tonumber(ARGV[2])
local cursor = '(' .. ARGV[1]
local n = 0
while n < cap do
  local chunk = redis.call('XRANGE', KEYS[1], cursor, '+', 'COUNT', math.min(1000, cap - n))
  local got = #chunk
  if got == 0 then break end
  n = n + got
  cursor = '(' .. chunk[got][1]
end
return n
"""


StreamId = tuple[int, int]

SHARD_BUSY = "shard_busy"
PERSISTENCE_BEHIND = "persistence_behind"
# The rejection types of backpressure: the order may be sent again after Retry-After.
BACKPRESSURE_REASONS = frozenset({SHARD_BUSY, PERSISTENCE_BEHIND})


class Refusal(NamedTuple):
    """Why new orders are refused for now, and when to send them again."""

    retry_after: int  # seconds
    reason: str  # SHARD_BUSY or PERSISTENCE_BEHIND
    detail: str


class StreamHistory:
    """Samples of one stream's (last generated id, entries added so far)."""

    def __init__(self, size: int = _HISTORY) -> None:
        self._ids: deque[StreamId] = deque(maxlen=size)
        self._added: deque[int] = deque(maxlen=size)

    def add(self, last_id: StreamId, added: int) -> None:
        if self._added and self._added[-1] == added:
            return
        if self._added and added < self._added[-1]:  # the stream was deleted and recreated
            self._ids.clear()
            self._added.clear()
        self._ids.append(last_id)
        self._added.append(added)

    def entries_read_at(self, delivered: StreamId) -> int | None:
        """How many entries have ids up to `delivered`, or None when it is older than
        every sample. Exact at a sample; between two, interpolated by time."""
        index = bisect_right(self._ids, delivered) - 1
        if index < 0:
            return None
        if index == len(self._ids) - 1:
            return self._added[index]
        (ms0, _), (ms1, _) = self._ids[index], self._ids[index + 1]
        added0, added1 = self._added[index], self._added[index + 1]
        fraction = (delivered[0] - ms0) / (ms1 - ms0) if ms1 > ms0 else 0.0
        # Entries up to sample index are read; the one ending sample index + 1 is not.
        return min(added0 + int(fraction * (added1 - added0)), added1 - 1)


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
        self._refusing: dict[int, Refusal] = {}
        self._venue_refusal: Refusal | None = None
        self._unpersisted_seen: tuple[float, int] | None = None  # (when, count)
        self._persist_rate: float | None = None  # unpersisted orders drained per second
        self._fell_at = float("-inf")  # when the count last fell
        self._refusing_since: float | None = None
        self._history = {shard: StreamHistory() for shard in self.shards}
        self._read: dict[int, tuple[float, int]] = {}  # shard -> (when, entries read)
        self._drain_rate: dict[int, float] = {}  # shard -> entries confirmed per second
        self._count_after = redis.register_script(_COUNT_AFTER)

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
        if self._refusing_since is None:
            return 0.0
        return time.monotonic() - self._refusing_since

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
        self._note_unpersisted(now, unpersisted_orders(answers[-2], answers[-1]))
        refusing: dict[int, Refusal] = {}
        for shard in self.shards:
            stream, groups = answers[2 * shard], answers[2 * shard + 1]
            lag, read = await self._lag(shard, stream, groups)
            self.lags[shard] = lag
            self._note_read(shard, now, read)
            SHARD_LAG.labels(shard=str(shard)).set(lag)
            over = lag > self.limit
            SHARD_REFUSING.labels(shard=str(shard)).set(1 if over else 0)
            if over:
                retry_after = self._retry_after(shard, lag)
                refusing[shard] = Refusal(retry_after, SHARD_BUSY, (
                    f"shard {shard} is over its queue limit; retry after {retry_after} s"))
        self._refusing = refusing

    def _note_unpersisted(self, now: float, count: int) -> None:
        """The venue's unpersisted orders and, over the limit, the refusal of every new
        order."""
        before, self._unpersisted_seen = self._unpersisted_seen, (now, count)
        self.unpersisted = count
        UNPERSISTED_ORDERS.set(count)
        if before is not None and now > before[0] and count < before[1]:
            # Only a fall says how fast the writer stores: while orders come in, the count
            # is their difference. Refusing stops them, so then the fall is the writer's.
            rate = (before[1] - count) / (now - before[0])
            previous = self._persist_rate
            self._persist_rate = rate if previous is None else 0.5 * previous + 0.5 * rate
            self._fell_at = now
        limit = self.unpersisted_limit
        if limit is None or count <= limit:
            self._venue_refusal = None
            self._refusing_since = None
            UNPERSISTED_REFUSING.set(0)
            return
        if self._refusing_since is None:
            self._refusing_since = now
        # Stalled: refusing for a while, and the count has not fallen in that time.
        stalled = now - max(self._refusing_since, self._fell_at) >= STALL_S
        rate = self._persist_rate
        if stalled:
            retry_after = STALLED_RETRY_AFTER_S
        elif rate:
            retry_after = max(1, min(MAX_RETRY_AFTER_S, math.ceil((count - limit) / rate)))
        else:  # the writer commits a run every fraction of a second: look again soon
            retry_after = 1
        self._venue_refusal = Refusal(retry_after, PERSISTENCE_BEHIND, (
            f"{count} orders await Postgres, over the venue's limit of {limit}; "
            f"retry after {retry_after} s"))
        UNPERSISTED_REFUSING.set(1)

    async def _lag(self, shard: int, stream, groups) -> tuple[int, int]:
        """(lag, entries read) of one shard from its XINFO STREAM and XINFO GROUPS."""
        if isinstance(stream, ResponseError):  # no stream yet: nothing queued
            return 0, 0
        added = stream["entries-added"]
        history = self._history[shard]
        history.add(parse_stream_id(stream["last-generated-id"]), added)
        group = None
        if not isinstance(groups, ResponseError):
            group = next((g for g in groups if g["name"] == SUBMITTERS_GROUP.encode()), None)
        if group is None:  # no submitter ever started on this shard
            return stream["length"], added - stream["length"]
        if group["lag"] is not None:
            return group["lag"], added - group["lag"]
        delivered = group["last-delivered-id"]
        read = history.entries_read_at(parse_stream_id(delivered))
        if read is None:
            waiting = await self._count_after(keys=[self.keys.orders(shard)],
                                              args=[delivered, self.limit + 1])
            read = added - waiting
        return max(0, added - read), read

    def _note_read(self, shard: int, now: float, read: int) -> None:
        before = self._read.get(shard)
        self._read[shard] = (now, read)
        if before is None or now <= before[0]:
            return
        rate = max(0.0, (read - before[1]) / (now - before[0]))
        previous = self._drain_rate.get(shard)
        self._drain_rate[shard] = rate if previous is None else 0.5 * previous + 0.5 * rate

    def _retry_after(self, shard: int, lag: int) -> int:
        """About how long the submitters need to bring the shard back under its limit."""
        rate = self._drain_rate.get(shard, 0.0)
        if rate <= 0:
            return STALLED_RETRY_AFTER_S
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil((lag - self.limit) / rate)))
