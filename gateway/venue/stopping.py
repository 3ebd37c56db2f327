"""A part's loop and its stop (SIGTERM, `venue.cli`): a blocking wait is cut short.

The submitter and the writer block on Redis for up to half a second when the queue is
idle; asked to stop, they would wait that out before finishing. What is cut short here is
only a wait: a read cancelled in flight drops its connection (redis-py disconnects a
command it cannot finish), and what Redis had given it is read again after the restart
(the submitter from its cursors, the writer from its pending entries).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """What `work` returns, or None (`work` cancelled) if `stop` is set first. A result
    that comes with the stop is kept: the part then finishes what it read."""
    task = asyncio.ensure_future(work)
    if stop.is_set() and not task.done():
        task.cancel()
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return None if task.cancelled() else task.result()
