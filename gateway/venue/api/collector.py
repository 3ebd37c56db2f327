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
its subscribers come, 44-60 ms for those 1,000); and from 10 minutes after the last
reclaim, one follows any full collection that leaves more frozen than it did, so nothing
dead is held much longer, whatever it holds (a closed connection's buffers).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)

RECLAIM_GROWTH = 2.0  # frozen objects, against what the last reclaim left
RECLAIM_AFTER_S = 600.0  # at the latest, once more are frozen than it left


class SurvivorFreezer:
    def __init__(self) -> None:
        self.baseline = 0  # objects frozen after the last reclaim
        self.reclaims = 0
        self._reclaimed_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reclaiming = False  # in reclaim(), or one is due on the loop

    def start(self) -> None:
        """Collect and freeze what start-up made; from now on freeze each full
        collection's survivors, and reclaim (on the event loop) once they double."""
        self._loop = asyncio.get_running_loop()
        gc.callbacks.append(self._after_collection)
        self.reclaim()

    async def close(self) -> None:
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
        gc.unfreeze()  # a process that starts the app again (tests) collects it all

    def _after_collection(self, phase: str, info: dict) -> None:
        # Any thread's allocation may run a collection, and this with it (the GIL held).
        if phase != "stop" or info["generation"] != 2:
            return
        # At the end of a full collection every generation holds only what it found
        # reachable: none of it is garbage yet.
        gc.freeze()
        if self._reclaiming or not self.reclaim_due():
            return
        self._reclaiming = True
        try:
            self._loop.call_soon_threadsafe(self.reclaim)
        except RuntimeError:  # the loop is closed: nobody to reclaim for
            self._reclaiming = False

    def reclaim_due(self) -> bool:
        frozen = gc.get_freeze_count()
        return frozen > self.baseline * RECLAIM_GROWTH or (
            frozen > self.baseline
            and time.monotonic() - self._reclaimed_at >= RECLAIM_AFTER_S)

    def reclaim(self) -> int:
        """Unfreeze, collect everything, freeze the rest; returns the objects found
        unreachable."""
        self._reclaiming = True
        try:
            started = time.perf_counter()
            frozen = gc.get_freeze_count()
            gc.unfreeze()
            found = gc.collect()
            gc.freeze()
            self.baseline = gc.get_freeze_count()
            self.reclaims += 1
            self._reclaimed_at = time.monotonic()
        finally:
            self._reclaiming = False
        log.info("garbage collector: collected everything in %.1f ms, %d objects "
                 "unreachable; %d frozen (%d before)", (time.perf_counter() - started) * 1000,
                 found, self.baseline, frozen)
        return found
