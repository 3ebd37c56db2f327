"""The gateway's market feed against a real engine: a book kept from its updates equals
the engine's and their seq / prevSeq chain holds, while the engine is followed, when it
is SIGKILLed and restarted, stops answering (SIGSTOP), comes back without its history
(and with another one, longer than the feed had followed), and when a batch from it
cannot be read; a subscriber waiting for a partition's books gets them, and a partition
nobody subscribes to any more is let go while another is followed."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import threading
from collections.abc import AsyncIterator

import grpc
import pytest

from tests.integration.test_api_report_feed import engine_batches
from venue.api.engines import EngineChannels
from venue.contract.config import Settings, VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.local.engine import EngineProcess
from venue.market.feed import MarketFeed

pytestmark = pytest.mark.integration


class Member:
    """Stands where a subscriber's socket stands: keeps a book from what it is sent."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.bids: dict[str, str] = {}

    def push(self, text: str, frame: bytes | None = None) -> None:
        message = json.loads(text)
        self.messages.append(message)
        if message["type"] == "snapshot":
            self.bids = dict(message["bids"])
        else:
            for price, quantity in message["bids"]:
                if quantity == "0":
                    self.bids.pop(price, None)
                else:
                    self.bids[price] = quantity

    def snapshots(self) -> int:
        return sum(m["type"] == "snapshot" for m in self.messages)


class Refused(grpc.RpcError):
    """What a follow gets from an engine it cannot reach."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "refused by the test"


class DamagingChannels(EngineChannels):
    """The engine's channels, but the next batch the feed is sent once `damage` is set
    arrives as bytes that cannot be read (as a broken engine or wire would give it), and
    while `refusing` is set every follow fails at once (as if the engine were away)."""

    damage = False
    refusing = False
    follows = 0  # calls made
    received = 0  # batches the calls were sent

    def follow_market(self, partition: int, from_sequence: int):
        self.follows += 1
        if self.refusing:
            class Away:
                def cancel(self) -> bool:
                    return True

                def __iter__(self):
                    raise Refused()

            return Away()
        call = super().follow_market(partition, from_sequence)
        channels = self

        class Damaged:
            def cancel(self) -> bool:
                return call.cancel()

            def __iter__(self):
                for batch in call:
                    channels.received += 1
                    if channels.damage:
                        channels.damage = False
                        batch = b"\x1a\x05\x08"  # an event cut short
                    yield batch

        return Damaged()


@pytest.fixture
async def feed(engine, venue_config: VenueConfig) -> AsyncIterator[MarketFeed]:
    engines = DamagingChannels(Settings(engines=engine.address))
    market = MarketFeed(venue_config, engines)
    try:
        yield market
    finally:
        await market.close()
        await engines.close()


async def engine_bids(address: str, instrument_id: int, venue: VenueConfig) -> dict[str, str]:
    async with grpc.aio.insecure_channel(address) as channel:
        book = await channel.unary_unary(
            "/tradingvenue.engine.v1.MatchingEngine/GetBook",
            request_serializer=pb.BookRequest.SerializeToString,
            response_deserializer=pb.BookSnapshot.FromString)(
                pb.BookRequest(instrument_id=instrument_id, depth=0))
    instrument = venue.by_id[instrument_id]
    return {instrument.price_text(level.price): instrument.quantity_text(level.quantity)
            for level in book.bids}


async def subscribe(feed: MarketFeed, venue: VenueConfig) -> Member:
    view = await feed.book_view(venue.by_symbol["BTC-USD"], depth=0, interval_ms=0)
    member = Member()
    member.push(*view.snapshot())
    view.members.add(member)
    return member


async def until(condition, what: str) -> None:
    try:
        async with asyncio.timeout(10):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"no {what} within 10 s") from None


def assert_chained(messages: list[dict]) -> None:
    for before, after in zip(messages, messages[1:]):
        if after["type"] == "update":
            assert after["prevSeq"] == before["seq"], (before, after)


async def assert_engines_book(member: Member, engine, venue: VenueConfig) -> None:
    await asyncio.sleep(0.2)  # nothing more comes
    btc = venue.by_symbol["BTC-USD"]
    assert member.bids == await engine_bids(engine.address, btc.id, venue)
    last_snapshot = max(i for i, m in enumerate(member.messages) if m["type"] == "snapshot")
    assert_chained(member.messages[last_snapshot:])


async def test_each_batch_the_engine_journals_reaches_the_book(
        engine, feed: MarketFeed, venue_config: VenueConfig) -> None:
    before = await engine_batches(engine.address, venue_config, 2)  # in the snapshot
    member = await subscribe(feed, venue_config)
    assert len(member.bids) == 2
    batches = await engine_batches(engine.address, venue_config, 5, first=3)
    await until(lambda: len(member.bids) == 7, "seven levels")
    await assert_engines_book(member, engine, venue_config)
    assert member.snapshots() == 1
    assert member.messages[-1]["seq"] == batches[-1].events[-1].sequence
    assert member.messages[1]["prevSeq"] == before[-1].events[-1].sequence


async def test_an_engine_sigkilled_and_restarted_is_followed_on_from_where_it_was(
        engine, feed: MarketFeed, venue_config: VenueConfig) -> None:
    member = await subscribe(feed, venue_config)
    await engine_batches(engine.address, venue_config, 3)
    await until(lambda: len(member.bids) == 3, "three levels")
    engine.child.process.send_signal(signal.SIGKILL)
    engine.child.process.wait()
    await asyncio.to_thread(engine.start)
    await engine_batches(engine.address, venue_config, 3, first=4)
    await until(lambda: len(member.bids) == 6, "six levels")
    await assert_engines_book(member, engine, venue_config)
    assert member.snapshots() == 1, "resumed, not started over"


async def test_a_quiet_partitions_engine_back_as_it_was_is_followed_again_with_no_snapshot(
        engine, feed: MarketFeed, venue_config: VenueConfig) -> None:
    """Nothing applied since the books were taken, so no event to check the engine's
    history by: the books are taken again, and are the same, so nothing is sent."""
    await engine_batches(engine.address, venue_config, 2)  # in the snapshot
    member = await subscribe(feed, venue_config)
    await until(lambda: feed.engines.received > 0, "the follow's first (empty) batch")
    engine.child.process.send_signal(signal.SIGKILL)
    engine.child.process.wait()
    before = feed.engines.received
    await asyncio.to_thread(engine.start)
    # Followed again: a call that answers (a follow made while the channel still backs
    # off fails at once, and the books are taken again, as they must be, from then on).
    await until(lambda: feed.engines.received > before, "the books taken again and followed")
    await engine_batches(engine.address, venue_config, 1, first=3)
    await until(lambda: len(member.bids) == 3, "three levels")
    await assert_engines_book(member, engine, venue_config)
    assert member.snapshots() == 1, "the same books: nothing to send"


async def test_an_engine_that_stops_answering_is_noticed_and_followed_again_once_back(
        engine, feed: MarketFeed, venue_config: VenueConfig,
        caplog: pytest.LogCaptureFixture) -> None:
    member = await subscribe(feed, venue_config)
    await engine_batches(engine.address, venue_config, 1)
    await until(lambda: len(member.bids) == 1, "a level")
    caplog.set_level(logging.WARNING, logger="venue.market.feed")
    engine.child.process.send_signal(signal.SIGSTOP)  # its connections stay, silent
    try:
        await until(lambda: any("partition 0: Replay from" in r.getMessage()
                                for r in caplog.records), "the silence noticed")
    finally:
        engine.child.process.send_signal(signal.SIGCONT)
    await engine_batches(engine.address, venue_config, 2, first=2)
    await until(lambda: len(member.bids) == 3, "three levels")
    await assert_engines_book(member, engine, venue_config)
    assert member.snapshots() == 1, "followed on, not started over"


async def test_an_engine_back_without_its_history_gives_fresh_books(
        engine, feed: MarketFeed, venue_config: VenueConfig) -> None:
    member = await subscribe(feed, venue_config)
    await engine_batches(engine.address, venue_config, 3)
    await until(lambda: len(member.bids) == 3, "three levels")
    engine.stop()
    shutil.rmtree(engine.data_dir)  # its journal lost: sequences start at 1 again
    await asyncio.to_thread(engine.start)
    await until(lambda: member.snapshots() == 2, "a fresh snapshot")
    assert member.bids == {}
    await engine_batches(engine.address, venue_config, 2, first=10)
    await until(lambda: len(member.bids) == 2, "two levels")
    await assert_engines_book(member, engine, venue_config)


async def test_an_engine_back_without_its_history_and_already_past_the_feed_gives_fresh_books(
        engine, feed: MarketFeed, venue_config: VenueConfig) -> None:
    """The race the OUT_OF_RANGE above does not catch: the engine lost its journal, and
    by the time the feed follows again its new history is longer than the old one was,
    so a follow from where the feed was would be answered with another history's events."""
    member = await subscribe(feed, venue_config)
    await engine_batches(engine.address, venue_config, 3)
    await until(lambda: len(member.bids) == 3, "three levels")
    feed.engines.refusing = True  # the feed follows again only once the engine has grown
    engine.stop()
    shutil.rmtree(engine.data_dir)
    await asyncio.to_thread(engine.start)
    await engine_batches(engine.address, venue_config, 5, first=10)
    feed.engines.refusing = False
    await until(lambda: member.snapshots() == 2, "a fresh snapshot")
    await assert_engines_book(member, engine, venue_config)
    assert len(member.bids) == 5


async def test_a_batch_that_cannot_be_read_starts_the_books_over_and_the_feed_goes_on(
        engine, feed: MarketFeed, venue_config: VenueConfig) -> None:
    member = await subscribe(feed, venue_config)
    await engine_batches(engine.address, venue_config, 1)
    await until(lambda: len(member.bids) == 1, "a level")
    feed.engines.damage = True
    await engine_batches(engine.address, venue_config, 1, first=2)  # lost in the damage
    await until(lambda: member.snapshots() == 2, "a fresh snapshot")
    assert len(member.bids) == 2  # the fresh books hold it
    await engine_batches(engine.address, venue_config, 2, first=3)
    await until(lambda: len(member.bids) == 4, "four levels")
    await assert_engines_book(member, engine, venue_config)


async def test_a_subscriber_waiting_for_books_keeps_its_partition_when_another_empties(
        built_engine, tmp_path) -> None:
    venue = VenueConfig(partitions=2)
    first, second = (next(i for i in venue.instruments
                          if venue.partition_of_shard(venue.shard_of(i)) == p) for p in (0, 1))
    zero = EngineProcess(venue, partition=0, data_dir=tmp_path / "engine-0").start()
    one = EngineProcess(venue, partition=1, data_dir=tmp_path / "engine-1")  # not yet
    engines = EngineChannels(Settings(engines=f"{zero.address},{one.address}"))
    feed = MarketFeed(venue, engines)
    try:
        view = await feed.book_view(first, depth=10, interval_ms=0)
        member = Member()
        view.members.add(member)
        waiting = asyncio.create_task(feed.book_view(second, depth=10, interval_ms=0))
        await asyncio.sleep(1)  # partition 1's engine does not answer yet
        feed.leave(view, member)  # partition 0's last subscriber goes
        await asyncio.to_thread(one.start)
        assert (await waiting).symbol.instrument == second
    finally:
        await feed.close()
        await engines.close()
        zero.stop()
        one.stop()


async def test_a_partition_nobody_subscribes_to_is_let_go_while_another_is_followed(
        built_engine, tmp_path) -> None:
    venue = VenueConfig(partitions=2)
    btc = venue.by_symbol["BTC-USD"]
    followed = venue.partition_of_shard(venue.shard_of(btc))
    other = next(i for i in venue.instruments
                 if venue.partition_of_shard(venue.shard_of(i)) != followed)
    processes = [EngineProcess(venue, partition=p, data_dir=tmp_path / f"engine-{p}").start()
                 for p in (0, 1)]
    engines = EngineChannels(Settings(engines=",".join(e.address for e in processes)))
    feed = MarketFeed(venue, engines)
    let_go = f"venue-market-{1 - followed}"
    try:
        member = await subscribe(feed, venue)
        view = await feed.book_view(other, depth=10, interval_ms=0)
        leaving = Member()
        view.members.add(leaving)
        await until(lambda: any(t.name == let_go for t in threading.enumerate()),
                    "the other partition followed")
        feed.leave(view, leaving)
        await until(lambda: not any(t.name == let_go for t in threading.enumerate()),
                    "the other partition's call let go")
        assert list(feed._partitions) == [followed]
        await engine_batches(processes[followed].address, venue, 2)
        await until(lambda: len(member.bids) == 2, "two levels")
        await assert_engines_book(member, processes[followed], venue)
    finally:
        await feed.close()
        await engines.close()
        for process in processes:
            process.stop()
