"""The gateway's cyclic garbage collector: what survives a full collection is frozen.

A gateway's long-lived objects are its start-up's (the imported modules', some 90,000)
and its connections' (about 100 for each WebSocket: its protocol, transport, tasks,
queues, timers and handshake). CPython collects every generation once what reached the
oldest since the last full collection is a quarter of what that one left, and a full
collection goes over all of them: with 1,000 market subscribers, 20-110 ms every 5-10 s
under `venue bench market` (2026-12-05), holding the event loop, every ack and every
market message.

So each full collection's survivors are frozen (gc.freeze) as it ends: the next ones go
over only what came since, 0.4-9 ms in the same runs. Start-up's objects are frozen the
same way, once.

Frozen objects are still freed by reference counting; a cycle among them that becomes
garbage (a closed connection's, typically) is not, until a reclaim: unfreeze, collect
everything once, freeze what is left. One follows the full collection that leaves twice
as many objects frozen as the last reclaim did, so what is kept for nothing is at most
about as much as what lives (a gateway whose connections hold steady reclaims once, as
its subscribers come, 44-60 ms for those 1,000); and one comes every 10 minutes when the
frozen objects have changed at all, so nothing dead is held much longer, whatever it
holds (a closed connection's buffers). (Measured on CPython 3.11, whose collector is
generational, as this relies on.)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)

RECLAIM_GROWTH = 2.0  # frozen objects, against what the last reclaim left
RECLAIM_AFTER_S = 600.0  # at the latest, when the frozen objects have changed since
RETRY_S = 1.0  # a reclaim that could not collect (another thread's collection ran)


class SurvivorFreezer:
    def __init__(self) -> None:
        self.baseline = 0  # objects frozen after the last reclaim
        self.reclaims = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due: asyncio.Handle | None = None  # a reclaim handed to the loop
        self._reclaiming = False
        self._task: asyncio.Task | None = None
        self._closed = False

    def start(self) -> None:
        """Collect and freeze what start-up made; from now on freeze each full
        collection's survivors, and reclaim (on the event loop) once they double, or
        every RECLAIM_AFTER_S when they have changed."""
        self._loop = asyncio.get_running_loop()
        gc.callbacks.append(self._after_collection)
        self.reclaim()
        self._task = asyncio.create_task(self._reclaiming_in_time(), name="venue-gc-reclaim")

    async def close(self) -> None:
        self._closed = True
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
        if self._due is not None:
            self._due.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        gc.unfreeze()  # a process that starts the app again (tests) collects it all

    def _after_collection(self, phase: str, info: dict) -> None:
        # Any thread's allocation may run a collection, and this with it (the GIL held).
        if phase != "stop" or info["generation"] != 2 or self._reclaiming:
            return
        # At the end of a full collection the generations hold what it found reachable
        # (and the little that finalizers or another thread made meanwhile, which waits
        # for a reclaim like a cycle that dies frozen).
        gc.freeze()
        if self._due is not None or gc.get_freeze_count() <= self.baseline * RECLAIM_GROWTH:
            return
        try:
            self._due = self._loop.call_soon_threadsafe(self.reclaim)
        except RuntimeError:  # the loop is closed: nobody to reclaim for
            pass

    def reclaim(self) -> int:
        """Unfreeze, collect everything, freeze the rest; returns the objects found
        unreachable."""
        self._due = None
        if self._closed:
            return 0
        started = time.perf_counter()
        frozen = gc.get_freeze_count()
        full = gc.get_stats()[2]["collections"]
        # No other thread's collection between the three (automatic ones wait while the
        # collector is disabled; this one is explicit).
        self._reclaiming = True
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            gc.unfreeze()
            found = gc.collect()
            gc.freeze()
        finally:
            self._reclaiming = False
            if was_enabled:
                gc.enable()
        if gc.get_stats()[2]["collections"] == full:
            # Another thread was inside a collection (its callbacks may let this thread
            # run): nothing was collected; again shortly.
            self._due = self._loop.call_later(RETRY_S, self.reclaim)
            return 0
        self.baseline = gc.get_freeze_count()
        self.reclaims += 1
        log.info("garbage collector: collected everything in %.1f ms, %d objects "
                 "unreachable; %d frozen (%d before)", (time.perf_counter() - started) * 1000,
                 found, self.baseline, frozen)
        return found

    async def _reclaiming_in_time(self) -> None:
        """What died frozen is held at most about RECLAIM_AFTER_S, however few objects
        (a closed connection's buffers), even if no full collection comes."""
        while True:
            await asyncio.sleep(RECLAIM_AFTER_S)
            if gc.get_freeze_count() != self.baseline and self._due is None:
                self.reclaim()
