"""A shard's queue lag: how many of its order-stream entries the submitters have not
confirmed. The one estimate of it, for the gateway's backpressure and the operator's
autoscaler alike (queue depth is the sum of the shards' lags: entries, each one
request's orders for the shard).

Redis reports the lag itself (XINFO GROUPS `lag`) only while it can count it: after
XGROUP SETID to an id in the middle of the stream, which is how the submitters confirm,
it answers null. Then the lag is interpolated from the estimator's own samples of the
stream's (last id, entries added): both come from Redis, so they share its clock. When
the confirmed id is older than every sample, the entries after it are counted
(count_after.lua, up to a cap).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from typing import NamedTuple

from venue.contract.entries import parse_stream_id
from venue.contract.keys import SUBMITTERS_GROUP

StreamId = tuple[int, int]
_HISTORY = 1200  # samples kept per shard: ten minutes at the gateway's half second
COUNT_AFTER = ("venue.contract", "count_after.lua")  # venue.contract.scripts.script


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


class Lag(NamedTuple):
    lag: int  # entries not yet confirmed
    read: int  # entries confirmed, of all ever added (for drain rates)


class CountAfter(NamedTuple):
    """The estimate needs the entries after `delivered` counted (COUNT_AFTER), then
    LagEstimator.counted."""

    delivered: bytes
    added: int


class LagEstimator:
    """Every shard's lag, from each sample of its XINFO STREAM and XINFO GROUPS."""

    def __init__(self, shards: range) -> None:
        self.shards = shards
        self._history = {shard: StreamHistory() for shard in shards}

    def estimate(self, shard: int, stream, groups) -> Lag | CountAfter:
        """The lag of `shard` from its XINFO STREAM and XINFO GROUPS answers (an
        exception for a stream or group that does not exist)."""
        if isinstance(stream, Exception):  # no stream yet: nothing queued
            return Lag(0, 0)
        added = stream["entries-added"]
        history = self._history[shard]
        history.add(parse_stream_id(stream["last-generated-id"]), added)
        group = None
        if not isinstance(groups, Exception):
            group = next((g for g in groups if _text(g["name"]) == SUBMITTERS_GROUP), None)
        if group is None:  # no submitter ever started on this shard
            return Lag(stream["length"], added - stream["length"])
        if group["lag"] is not None:
            return Lag(group["lag"], added - group["lag"])
        delivered = group["last-delivered-id"]
        read = history.entries_read_at(parse_stream_id(delivered))
        if read is None:
            return CountAfter(delivered, added)
        return Lag(max(0, added - read), read)

    @staticmethod
    def counted(count: CountAfter, waiting: int) -> Lag:
        """The lag once the entries after the confirmed id are counted (`waiting`)."""
        return Lag(waiting, count.added - waiting)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
