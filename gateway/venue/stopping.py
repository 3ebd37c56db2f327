"""A part's loop and its stop (SIGTERM, `venue.cli`): a blocking wait is cut short.

The submitter and the writer block on Redis for up to half a second when the queue is
idle; asked to stop, they would wait that out before finishing. What is cut short here is
only a wait: a read cancelled in flight drops its connection (redis-py disconnects a
command it cannot finish), and what Redis had given it is read again after the restart
(the submitter from its cursors, the writer from its pending entries).

The waiting task itself is cancelled, by one watcher of the stop: a wait costs a set's
add and discard (a task of its own for each, raced against the stop, cost 9 µs a read).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class BlockingWaits:
    """The blocking waits of one part's tasks, cut short when `stop` is set."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self._waiting: set[asyncio.Task] = set()
        self._cut: set[asyncio.Task] = set()
        self._watcher: asyncio.Task | None = None

    async def wait(self, work: Awaitable[T]) -> T | None:
        """What `work` returns, or None (`work` cancelled) if the stop comes first. A
        result the task has taken as the stop comes is kept (the part then finishes what
        it read); one that came but was not taken yet is dropped, and Redis gives it
        again."""
        if self.stop.is_set():
            if inspect.iscoroutine(work):
                work.close()  # never begun
            return None
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._cut_on_stop())
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            return await work
        except asyncio.CancelledError:
            if task not in self._cut:
                raise  # cancelled by someone else: theirs to handle
            self._cut.discard(task)
            if task.uncancel():
                raise  # cancelled by someone else too
            return None
        finally:
            self._waiting.discard(task)

    async def _cut_on_stop(self) -> None:
        await self.stop.wait()
        for task in tuple(self._waiting):
            self._cut.add(task)
            task.cancel()
