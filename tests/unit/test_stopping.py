"""venue.stopping.BlockingWaits: a part's blocking waits cut short by its stop, on asyncio's
own primitives and on a real Redis's blocking reads (the submitter's XREAD, the writer's
XREADGROUP)."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from venue.stopping import BlockingWaits


async def test_what_the_work_returns_when_it_ends_first() -> None:
    waits = BlockingWaits(asyncio.Event())
    assert await waits.wait(asyncio.sleep(0, result="read")) == "read"
    assert await waits.wait(asyncio.sleep(0.01, result="again")) == "again"


async def _blocked(cancelled: list[str], name: str) -> str:
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        cancelled.append(name)
        raise
    return "read"


async def test_a_stop_cancels_the_waits_and_gives_none() -> None:
    stop = asyncio.Event()
    waits = BlockingWaits(stop)
    cancelled: list[str] = []
    asyncio.get_running_loop().call_later(0.05, stop.set)
    started = time.monotonic()
    # Two tasks of the part waiting at once (the submitter's pumps): both cut.
    assert await asyncio.gather(waits.wait(_blocked(cancelled, "a")),
                                waits.wait(_blocked(cancelled, "b"))) == [None, None]
    assert time.monotonic() - started < 30
    assert sorted(cancelled) == ["a", "b"]
    assert asyncio.current_task().cancelling() == 0


async def test_a_stop_already_set_gives_none_without_beginning_the_work() -> None:
    stop = asyncio.Event()
    stop.set()
    ran = []

    async def work() -> str:
        ran.append(True)
        return "read"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would fail
        assert await BlockingWaits(stop).wait(work()) is None
        gc.collect()
    assert ran == []


async def test_a_result_taken_as_the_stop_comes_is_kept() -> None:
    stop = asyncio.Event()

    async def work() -> str:
        await asyncio.sleep(0)
        stop.set()  # the stop comes as the work ends
        return "read"

    assert await BlockingWaits(stop).wait(work()) == "read"


async def test_what_the_work_raises_is_raised() -> None:
    async def work() -> None:
        raise LookupError("from the work")

    with pytest.raises(LookupError, match="from the work"):
        await BlockingWaits(asyncio.Event()).wait(work())


async def test_a_cancellation_of_someone_elses_is_not_swallowed() -> None:
    stop = asyncio.Event()
    waits = BlockingWaits(stop)
    cancelled: list[str] = []
    waiting = asyncio.ensure_future(waits.wait(_blocked(cancelled, "a")))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert cancelled == ["a"]
    # ... nor when the stop comes with it.
    waiting = asyncio.ensure_future(waits.wait(_blocked(cancelled, "b")))
    await asyncio.sleep(0.05)
    stop.set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert cancelled == ["a", "b"]


async def test_a_blocking_xread_cut_short_leaves_its_client_answering_truly(redis_url: str
                                                                           ) -> None:
    """redis-py drops the connection of a command it could not finish: the client's next
    reply is its own, not the cut read's."""
    client = Redis.from_url(redis_url)
    try:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.1, stop.set)
        started = time.monotonic()
        assert await BlockingWaits(stop).wait(client.xread({"s": "$"}, block=10_000)) is None
        assert time.monotonic() - started < 5  # not the block's 10 s
        entry = await client.xadd("s", {"f": "v"})
        assert await client.xread({"s": "0"}) == [[b"s", [(entry, {b"f": b"v"})]]]
        assert await client.ping()
    finally:
        await client.aclose()


async def test_an_entry_given_to_a_read_as_it_is_stopped_is_returned_or_left_pending(
        redis_url: str) -> None:
    """The writer's race: Redis hands a blocked XREADGROUP an entry as the writer is asked
    to stop. Whichever wins, the entry is not lost: the read returns it, or it stays
    pending for that consumer, which the writer reads again first when it starts."""
    client = Redis.from_url(redis_url)
    other = sync_redis.Redis.from_url(redis_url)
    try:
        await client.xgroup_create("events", "writers", id="0", mkstream=True)
        stop = asyncio.Event()
        reading = asyncio.ensure_future(BlockingWaits(stop).wait(client.xreadgroup(
            "writers", "w1", {"events": ">"}, count=10, block=10_000)))
        await asyncio.sleep(0.1)  # blocked at Redis
        entry = other.xadd("events", {"f": "v"})  # handed to the blocked read at once
        time.sleep(0.05)  # its reply is on the socket; this loop has not read it
        stop.set()
        read = await reading
        pending = await client.xreadgroup("writers", "w1", {"events": "0"})
        given = [e for _, entries in (read or []) for e, _ in entries]
        left = [e for _, entries in pending for e, _ in entries]
        assert read is None or given == [entry]
        assert left == [entry]  # not acknowledged either way: a writer acks once stored
    finally:
        await client.aclose()
        other.close()
