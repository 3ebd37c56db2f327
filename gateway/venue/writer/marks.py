"""Which shards' marks hold once Postgres has the events before them.

An events entry carries the marks of the order-stream entries its batch answers (how
far each shard's orders are answered). A mark is true once its partition is persisted
through the batch's last sequence; the writer then records the latest true mark of
each shard (venue.queue.persisted), which is how the gateway counts unpersisted orders
and Redis trims the order streams.
"""

from __future__ import annotations

from collections import deque

from venue.contract.entries import Mark


class PendingMarks:
    def __init__(self, persisted: dict[int, int], partitions: range) -> None:
        # Per partition: how far Postgres holds it (committed), and the marks of batches
        # read, in order, that it does not hold yet.
        self._committed = {p: persisted.get(p, 0) for p in partitions}
        self._waiting: dict[int, deque[tuple[int, list[Mark]]]] = {p: deque() for p in partitions}

    def add(self, partition: int, sequence: int, marks: list[Mark]) -> None:
        """The marks of a batch whose last sequence is `sequence`."""
        if partition in self._waiting:
            self._waiting[partition].append((sequence, marks))

    def now_true(self, through: dict[int, int]) -> list[Mark]:
        """Note that Postgres now holds each partition through `through`; per shard, the
        latest mark that is now true."""
        for partition, sequence in through.items():
            self._committed[partition] = max(self._committed[partition], sequence)
        latest: dict[int, Mark] = {}
        # Every partition's: a batch of no events may be read after its partition is
        # persisted through it, and then nothing moves `through` for it.
        for partition, waiting in self._waiting.items():
            committed = self._committed[partition]
            while waiting and waiting[0][0] <= committed:
                for mark in waiting.popleft()[1]:
                    if mark.shard not in latest or mark.entry > latest[mark.shard].entry:
                        latest[mark.shard] = mark
        return list(latest.values())
