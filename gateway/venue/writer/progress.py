"""Which of a partition's event sequences are persisted, and where the first gap is.

Sequences have no gaps at the engine; the copy in Redis may (a submitter killed after
the engine answered and before it published). The writer keeps this per partition,
persists `through` with the rows, and asks the engine to replay what stays missing.
"""

from __future__ import annotations

import time


class SequenceProgress:
    def __init__(self, through: int = 0) -> None:
        self.through = through  # every sequence <= through is persisted
        self.head = through  # the highest sequence the engine is known to have assigned
        self._ranges: list[tuple[int, int]] = []  # persisted, above through+1, disjoint
        self._since = time.monotonic()  # when `through` last moved or the lag began

    def add(self, first: int, last: int) -> None:
        """Sequences first..last are persisted."""
        self.head = max(self.head, last)
        if last <= self.through:
            return
        self._ranges.append((max(first, self.through + 1), last))
        self._ranges.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in self._ranges:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        moved = False
        while merged and merged[0][0] <= self.through + 1:
            self.through = max(self.through, merged.pop(0)[1])
            moved = True
        self._ranges = merged
        if moved:
            self._since = time.monotonic()

    def saw_head(self, head: int) -> None:
        """The engine has assigned sequences up to `head` (from a batch or Health)."""
        if head > self.head:
            if self.head == self.through:
                self._since = time.monotonic()
            self.head = head

    def missing_for(self, now: float | None = None) -> float:
        """Seconds the sequences after `through` have been missing (0 when none are)."""
        if self.head <= self.through:
            return 0.0
        return (now if now is not None else time.monotonic()) - self._since
