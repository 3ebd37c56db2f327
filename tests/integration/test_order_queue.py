"""The order queue against a real Redis: order kept, claims atomic, requests coalesced."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from venue.config import VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.enginewire import command_batch, source_fields, traceparent_field
from venue.queue import OrderQueue, QueuedCommand, parse_stream_id, split_frames

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def command(order_id: int) -> bytes:
    return pb.Command(new_order=pb.NewOrder(order_id=order_id)).SerializeToString()


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
    assert await queue.pending_command(250) is not None
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
    assert await queue.pending_command(2) is None
    await queue.redis.aclose()


async def test_claims_hold_across_runs_of_accounts_and_commands_without_claims(redis_url):
    queue = OrderQueue(Redis.from_url(redis_url), VenueConfig())
    answers = await queue.enqueue_entry(2, [
        QueuedCommand(1, command(1), 7, "a"),
        QueuedCommand(1, b"cancel of 1", pending=False),
        QueuedCommand(2, command(2), 8, "a"),
        QueuedCommand(3, command(3), 7, "a"),  # 7's "a" again, two runs later
        QueuedCommand(4, command(4), 7, None),
        QueuedCommand(5, command(5), 8, "b")], TRACE)
    assert [(a.order_id, a.duplicate) for a in answers] == [
        (1, False), (1, False), (2, False), (1, True), (4, False), (5, False)]
    [(_, fields)] = await queue.redis.xrange(queue.keys.orders(2))
    assert split_frames(fields[b"cmds"]) == [command(1), b"cancel of 1", command(2),
                                              command(4), command(5)]
    assert [await queue.claimed_order_id(account, coid)
            for account, coid in ((7, "a"), (8, "a"), (8, "b"), (7, "b"))] == [1, 2, 5, None]
    assert await queue.pending_command(1) == command(1)
    assert await queue.pending_command(3) is None  # the duplicate: never queued
    assert await queue.pending_command(4) == command(4)
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
    await first.redis.aclose()
    await second.redis.aclose()
