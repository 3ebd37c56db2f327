"""The gateway's garbage collector policy (venue.api.collector), on this interpreter's
own collector: survivors of a full collection are frozen, and cycles that die frozen are
reclaimed once the frozen objects double."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Awaitable, Callable

import pytest

from venue.api import collector
from venue.api.collector import SurvivorFreezer


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _cycles(count: int) -> list[Node]:
    nodes = []
    for _ in range(count):
        a, b = Node(), Node()
        a.other, b.other = b, a
        nodes.append(a)
    return nodes


def _with_freezer(body: Callable[[SurvivorFreezer], Awaitable[None]]) -> None:
    """Runs `body` on an event loop with a started freezer, closed after; closing leaves
    nothing frozen."""
    async def main() -> None:
        freezer = SurvivorFreezer()
        freezer.start()
        try:
            await body(freezer)
        finally:
            await freezer.close()

    asyncio.run(main())
    assert gc.get_freeze_count() == 0


def _scanned(obj: object) -> bool:
    """Whether a collection goes over `obj` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_what_survives_a_full_collection_is_frozen_and_no_longer_scanned() -> None:
    async def body(freezer: SurvivorFreezer) -> None:
        kept = _cycles(100)
        assert _scanned(kept[0])
        frozen = gc.get_freeze_count()
        gc.collect()
        assert not _scanned(kept[0])
        assert gc.get_freeze_count() >= frozen + 200
        # A young collection freezes nothing.
        young = Node()
        gc.collect(0)
        assert _scanned(young)

    _with_freezer(body)


def test_cycles_that_die_frozen_are_reclaimed_once_the_frozen_objects_double(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def body(freezer: SurvivorFreezer) -> None:
        monkeypatch.setattr(collector, "RECLAIM_GROWTH", 1e9)  # not yet
        doomed = _cycles(1000)
        dead = [weakref.ref(node) for node in doomed]
        gc.collect()  # frozen while alive
        del doomed
        gc.collect()
        await asyncio.sleep(0)
        assert all(ref() is not None for ref in dead)  # garbage, kept frozen
        assert freezer.reclaims == 1  # start-up's
        # The next full collection's survivors take the frozen objects past the growth
        # allowed: it hands a reclaim to the event loop.
        monkeypatch.setattr(collector, "RECLAIM_GROWTH",
                            (gc.get_freeze_count() + 1000) / freezer.baseline)
        alive = _cycles(1000)
        gc.collect()
        assert freezer.reclaims == 1
        await asyncio.sleep(0)
        assert freezer.reclaims == 2
        assert all(ref() is None for ref in dead)
        assert not _scanned(alive[0])

    _with_freezer(body)


def test_what_died_frozen_is_reclaimed_in_time_however_little_it_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector, "RECLAIM_GROWTH", 1e9)
    monkeypatch.setattr(collector, "RECLAIM_AFTER_S", 0.05)

    async def body(freezer: SurvivorFreezer) -> None:
        doomed = _cycles(10)
        dead = weakref.ref(doomed[0])
        gc.collect()
        del doomed
        for _ in range(100):
            await asyncio.sleep(0.02)
            if dead() is None:
                break
        assert dead() is None
        assert freezer.reclaims >= 2

    _with_freezer(body)


def test_a_collection_on_another_thread_hands_its_reclaim_to_the_event_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def body(freezer: SurvivorFreezer) -> None:
        gc.disable()  # none on this thread meanwhile
        try:
            alive = _cycles(1000)
            monkeypatch.setattr(collector, "RECLAIM_GROWTH",
                                (gc.get_freeze_count() + 1000) / freezer.baseline)
            worker = threading.Thread(target=gc.collect)
            worker.start()
            worker.join()
        finally:
            gc.enable()
        assert freezer.reclaims == 1
        for _ in range(100):
            await asyncio.sleep(0.01)
            if freezer.reclaims == 2:
                break
        assert freezer.reclaims == 2
        assert not _scanned(alive[0])

    _with_freezer(body)


def test_a_reclaim_due_when_it_closes_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body(freezer: SurvivorFreezer) -> None:
        monkeypatch.setattr(collector, "RECLAIM_GROWTH", 0.5)
        gc.collect()  # hands one to the loop, which closes before it runs
        assert freezer.reclaims == 1

    _with_freezer(body)  # which checks that nothing is left frozen
