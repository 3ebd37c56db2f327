"""The order queue against a real Redis: order kept, claims atomic, requests coalesced,
queued orders found until the writer says they are persisted."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from venue.contract.config import VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.contract.wire import command_batch, source_fields, traceparent_field
from venue.contract.entries import Mark, parse_stream_id, split_frames, unpersisted_orders
from venue.queue import order_ids
from venue.queue.order_queue import OrderQueue, QueuedCommand
from venue.queue.persisted import PersistedMarks

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def command(order_id: int) -> bytes:
    return pb.Command(new_order=pb.NewOrder(order_id=order_id)).SerializeToString()


def cancel(order_id: int) -> bytes:
    return pb.Command(cancel=pb.CancelOrder(order_id=order_id)).SerializeToString()


async def queued_order_ids(queue: OrderQueue, shard: int) -> tuple[int, list[int]]:
    entries = await queue.redis.xrange(queue.keys.orders(shard))
    ids = [pb.Command.FromString(c).new_order.order_id
           for _, fields in entries for c in split_frames(fields[b"cmds"])]
    return len(entries), ids


async def test_concurrent_orders_share_appends_but_keep_their_arrival_order(redis_url):
    queue = OrderQueue(Redis.from_url(redis_url), VenueConfig())
    answers = await asyncio.gather(*(
        queue.enqueue(shard=1, order_id=i, command=command(i), traceparent=TRACE,
                      account_id=7, client_order_id=f"c{i}") for i in range(1, 501)))
    assert [a.order_id for a in answers] == list(range(1, 501))
    entries, ids = await queued_order_ids(queue, 1)
    assert ids == list(range(1, 501))
    assert entries < 500  # coalesced while earlier appends were at Redis
    assert await queue.queued_command(250) is not None
    await queue.redis.aclose()


async def test_coalesced_orders_each_reach_the_engine_with_their_own_requests_trace(
        redis_url):
    queue = OrderQueue(Redis.from_url(redis_url), VenueConfig())
    traces = [f"00-{i:032x}-{i:016x}-01" for i in range(1, 201)]
    await asyncio.gather(*(queue.enqueue(shard=1, order_id=i, command=command(i),
                                         traceparent=traces[i - 1]) for i in range(1, 201)))
    entries = await queue.redis.xrange(queue.keys.orders(1))
    assert len(entries) < 200
    # What the submitter sends the engine for these entries (submitter.py does this).
    batch = pb.CommandBatch.FromString(command_batch(1, [
        (traceparent_field(fields[b"traceparent"]),
         source_fields(1, *parse_stream_id(entry_id)), split_frames(fields[b"cmds"]))
        for entry_id, fields in entries]))
    assert [(c.new_order.order_id, c.traceparent) for c in batch.commands] == [
        (i, traces[i - 1]) for i in range(1, 201)]
    # Only an order that shares an entry with an earlier request carries its own.
    own = sum(pb.Command.FromString(c).traceparent != ""
              for _, fields in entries for c in split_frames(fields[b"cmds"]))
    assert own == 200 - len(entries)
    await queue.redis.aclose()


async def test_a_repeated_client_order_id_in_one_append_is_queued_once(redis_url):
    queue = OrderQueue(Redis.from_url(redis_url), VenueConfig())
    first, again, other = await queue.enqueue_entry(1, [
        QueuedCommand(1, command(1), account_id=7, client_order_id="same"),
        QueuedCommand(2, command(2), account_id=7, client_order_id="same"),
        QueuedCommand(3, command(3), account_id=8, client_order_id="same")], TRACE)
    assert (first.duplicate, again.duplicate, other.duplicate) == (False, True, False)
    assert again.order_id == 1 and again.stream_id is None
    assert (await queued_order_ids(queue, 1))[1] == [1, 3]
    assert await queue.queued_command(2) is None
    await queue.redis.aclose()


async def test_claims_hold_across_runs_of_accounts_and_commands_without_claims(redis_url):
    queue = OrderQueue(Redis.from_url(redis_url), VenueConfig())
    answers = await queue.enqueue_entry(2, [
        QueuedCommand(1, command(1), 7, "a"),
        QueuedCommand(1, cancel(1), pending=False),
        QueuedCommand(2, command(2), 8, "a"),
        QueuedCommand(3, command(3), 7, "a"),  # 7's "a" again, two runs later
        QueuedCommand(4, command(4), 7, None),
        QueuedCommand(5, command(5), 8, "b")], TRACE)
    assert [(a.order_id, a.duplicate) for a in answers] == [
        (1, False), (1, False), (2, False), (1, True), (4, False), (5, False)]
    [(_, fields)] = await queue.redis.xrange(queue.keys.orders(2))
    assert split_frames(fields[b"cmds"]) == [command(1), cancel(1), command(2),
                                              command(4), command(5)]
    assert [await queue.claimed_order_id(account, coid)
            for account, coid in ((7, "a"), (8, "a"), (8, "b"), (7, "b"))] == [1, 2, 5, None]
    assert await queue.queued_command(1) == command(1)
    assert await queue.queued_command(3) is None  # the duplicate: never queued
    assert await queue.queued_command(4) == command(4)
    await queue.redis.aclose()


async def test_an_entry_of_only_duplicates_appends_nothing(redis_url):
    queue = OrderQueue(Redis.from_url(redis_url), VenueConfig())
    await queue.enqueue_entry(0, [QueuedCommand(1, command(1), 7, "x")], TRACE)
    [again] = await queue.enqueue_entry(0, [QueuedCommand(2, command(2), 7, "x")], TRACE)
    assert again.duplicate and again.order_id == 1
    assert await queue.redis.xlen(queue.keys.orders(0)) == 1
    await queue.redis.aclose()


async def test_order_ids_are_unique_across_gateways(redis_url):
    first = OrderQueue(Redis.from_url(redis_url), VenueConfig())
    second = OrderQueue(Redis.from_url(redis_url), VenueConfig())
    ids = await first.next_order_ids(5000) + await second.next_order_ids(3) + \
        [await first.next_order_id() for _ in range(10)]
    assert len(set(ids)) == len(ids)
    # A shard's ids come from a block of its own: consecutive, whatever other shards take.
    shard_ids = []
    for _ in range(5):
        shard_ids.append(await first.next_order_id(2))
        ids.append(await first.next_order_id(3))
    assert shard_ids == list(range(shard_ids[0], shard_ids[0] + 5))
    assert len(set(ids + shard_ids)) == len(ids) + len(shard_ids)
    await first.redis.aclose()
    await second.redis.aclose()


async def test_an_order_id_names_the_day_it_was_taken(redis_url, monkeypatch):
    queue = OrderQueue(Redis.from_url(redis_url), VenueConfig())
    today = order_ids.utc_day()
    first = await queue.next_order_ids(10)
    assert {order_ids.day_of_order_id(i) for i in first} == {today}
    assert first[0] == order_ids.first_order_id(today) + 1
    # Past midnight the block of the day before is used up, then the new day's begins:
    # at its own first id, whatever the day before took.
    monkeypatch.setattr(order_ids, "utc_day", lambda: today + 1)
    later = await queue.next_order_ids(order_ids.ORDER_ID_BLOCK)
    assert later[: order_ids.ORDER_ID_BLOCK - 10] == list(
        range(first[-1] + 1, first[-1] + 1 + order_ids.ORDER_ID_BLOCK - 10))
    assert later[order_ids.ORDER_ID_BLOCK - 10:] == list(
        range(order_ids.first_order_id(today + 1) + 1, order_ids.first_order_id(today + 1) + 11))
    assert await queue.redis.ttl(queue.keys.order_id_counter(today + 1)) > 86_400
    await queue.redis.aclose()


async def unpersisted(queue: OrderQueue) -> int:
    return unpersisted_orders(await queue.redis.hgetall(queue.keys.queued_counts),
                              await queue.redis.hgetall(queue.keys.persisted_marks))


async def test_queued_orders_are_found_through_their_runs_of_consecutive_ids(redis_url):
    queue = OrderQueue(Redis.from_url(redis_url), VenueConfig())
    ids = [10, 11, 12, 20, 21, 22]
    answers = await queue.enqueue_entry(3, [
        *(QueuedCommand(i, command(i), 7, f"c{i}") for i in ids[:5]),
        QueuedCommand(11, cancel(11), pending=False),  # not an order of the run
        QueuedCommand(22, command(22), 7, "c22"),
        QueuedCommand(23, command(23), 7, "c10")], TRACE)  # a duplicate: not queued
    entry = answers[0].stream_id
    assert await queue.redis.zrange(queue.keys.queued_runs, 0, -1, withscores=True) == [
        (f"10:12:3:{entry}".encode(), 10), (f"20:22:3:{entry}".encode(), 20)]
    assert await queue.redis.lrange(queue.keys.shard_runs(3), 0, -1) == [
        f"10:12:3:{entry}".encode(), f"20:22:3:{entry}".encode()]
    for order_id in range(5, 30):
        expected = command(order_id) if order_id in ids else None
        assert await queue.queued_command(order_id) == expected, order_id
    [(_, fields)] = await queue.redis.xrange(queue.keys.orders(3))
    assert fields[b"n"] == b"6" and await unpersisted(queue) == 6
    await queue.redis.aclose()


async def test_a_persisted_mark_forgets_the_runs_through_it_and_counts_the_rest(redis_url):
    redis = Redis.from_url(redis_url)
    queue = OrderQueue(redis, VenueConfig())
    entries = []
    for first in (1, 101, 201):  # three entries of shard 0, of 100 orders each
        answers = await queue.enqueue_entry(0, [QueuedCommand(i, command(i))
                                                for i in range(first, first + 100)], TRACE)
        entries.append(parse_stream_id(answers[0].stream_id))
    [other] = await queue.enqueue_entry(1, [QueuedCommand(500, command(500))], TRACE)
    assert await unpersisted(queue) == 301
    marks = PersistedMarks(redis, queue.keys, retain_ms=0)

    async def record(*marks_of_shards: Mark) -> None:
        async with redis.pipeline(transaction=False) as pipe:
            await marks.record(pipe, list(marks_of_shards))
            await pipe.execute()

    await record(Mark(0, entries[1], 200))
    assert await unpersisted(queue) == 101
    assert await queue.queued_command(150) is None  # read from Postgres from now on
    assert await queue.queued_command(250) == command(250)
    assert await queue.queued_command(500) == command(500)
    assert await redis.llen(queue.keys.shard_runs(0)) == 1
    remaining = [parse_stream_id(i) for i, _ in await redis.xrange(queue.keys.orders(0))]
    assert entries[2] in remaining
    await record(Mark(0, entries[0], 100))  # an older mark (a batch read again) moves nothing
    assert await unpersisted(queue) == 101
    await record(Mark(0, entries[2], 300), Mark(1, parse_stream_id(other.stream_id), 1))
    assert await unpersisted(queue) == 0
    assert await redis.zcard(queue.keys.queued_runs) == 0
    await redis.aclose()


async def test_a_persisted_mark_trims_its_shard_stream_up_to_it_and_no_further(redis_url):
    redis = Redis.from_url(redis_url)
    queue = OrderQueue(redis, VenueConfig())
    entries = []
    for order_id in range(1, 1001):
        [answer] = await queue.enqueue_entry(0, [QueuedCommand(order_id, command(order_id))],
                                             TRACE)
        entries.append(parse_stream_id(answer.stream_id))
    async with redis.pipeline(transaction=False) as pipe:
        await PersistedMarks(redis, queue.keys, retain_ms=0).record(
            pipe, [Mark(0, entries[799], 800)])
        await pipe.execute()
    remaining = [parse_stream_id(i) for i, _ in await redis.xrange(queue.keys.orders(0))]
    # Trimmed a node of entries at a time (~): never past the mark's millisecond.
    assert len(remaining) < 1000 and set(entries[800:]) <= set(remaining)
    assert min(remaining)[0] <= entries[799][0]
    assert await queue.queued_command(801) == command(801)
    await redis.aclose()
