"""venue.stopping.unless_stopped: a part's blocking wait cut short by its stop, on asyncio's
own primitives and on a real Redis's blocking reads (the submitter's XREAD, the writer's
XREADGROUP)."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from venue.stopping import unless_stopped


async def test_what_the_work_returns_when_it_ends_first() -> None:
    stop = asyncio.Event()
    assert await unless_stopped(asyncio.sleep(0, result="read"), stop) == "read"
    assert not stop.is_set()


async def test_a_stop_cancels_the_work_and_gives_none() -> None:
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def blocked() -> str:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "read"

    asyncio.get_running_loop().call_later(0.05, stop.set)
    started = time.monotonic()
    assert await unless_stopped(blocked(), stop) is None
    assert time.monotonic() - started < 30
    assert cancelled.is_set()


async def test_a_stop_already_set_gives_none_without_waiting() -> None:
    stop = asyncio.Event()
    stop.set()
    ran = []

    async def work() -> str:
        ran.append(True)
        await asyncio.sleep(60)
        return "read"

    assert await unless_stopped(work(), stop) is None
    assert ran == []  # cancelled before it began


async def test_a_result_that_comes_with_the_stop_is_kept() -> None:
    stop = asyncio.Event()

    async def work() -> str:
        stop.set()  # the stop comes as the work ends
        return "read"

    assert await unless_stopped(work(), stop) == "read"


async def test_what_the_work_raises_is_raised() -> None:
    async def work() -> None:
        raise LookupError("from the work")

    with pytest.raises(LookupError, match="from the work"):
        await unless_stopped(work(), asyncio.Event())


async def test_being_cancelled_cancels_the_work_too() -> None:
    cancelled = asyncio.Event()

    async def blocked() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    waiting = asyncio.ensure_future(unless_stopped(blocked(), asyncio.Event()))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert cancelled.is_set()


async def test_a_blocking_xread_cut_short_leaves_its_client_answering_truly(redis_url: str
                                                                           ) -> None:
    """redis-py drops the connection of a command it could not finish: the client's next
    reply is its own, not the cut read's."""
    client = Redis.from_url(redis_url)
    try:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.1, stop.set)
        started = time.monotonic()
        assert await unless_stopped(client.xread({"s": "$"}, block=10_000), stop) is None
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
        reading = asyncio.ensure_future(unless_stopped(client.xreadgroup(
            "writers", "w1", {"events": ">"}, count=10, block=10_000), stop))
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
