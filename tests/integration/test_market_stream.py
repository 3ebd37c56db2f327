"""The gateway's market feed against a real engine and a real Redis: a book kept from its
updates equals the engine's, and their seq / prevSeq chain holds, whatever the market
stream repeats, skips (entries trimmed, or never published by a submitter killed between
the engine's answer and Redis) or holds that cannot be read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from redis.asyncio import Redis

from tests.integration.test_api_report_feed import engine_batches
from venue._reportwire import market_cut
from venue.api.engines import EngineChannels
from venue.api.report_feed import ReportFeed
from venue.contract.config import Settings, VenueConfig
from venue.contract.entries import FIELD_BATCH, market_fields
from venue.contract.keys import Keys
from venue.enginepb import engine_pb2 as pb
from venue.market.feed import MarketFeed
from venue.submitter import process as submitter_process

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


@pytest.fixture
async def feed(engine, venue_config: VenueConfig, redis: Redis) -> AsyncIterator[MarketFeed]:
    engines = EngineChannels(Settings(engines=engine.address))
    market = MarketFeed(redis, venue_config, engines, ReportFeed(redis, venue_config, engines))
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
    member.push(view.snapshot())
    view.members.add(member)
    return member


async def publish(redis: Redis, stream: str, batch: pb.ReportBatch) -> None:
    await redis.xadd(stream, market_fields(*market_cut(batch.SerializeToString())))


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


async def test_a_repeated_entry_is_skipped_and_missing_ones_come_from_the_engine(
        engine, feed: MarketFeed, venue_config: VenueConfig, redis: Redis) -> None:
    member = await subscribe(feed, venue_config)
    batches = await engine_batches(engine.address, venue_config, 5)
    stream = Keys(venue_config.name).market(0)
    for index in (0, 1, 0, 4):  # 2 and 3 were trimmed, or never published
        await publish(redis, stream, batches[index])
    await until(lambda: len(member.bids) == 5, "five levels")
    await asyncio.sleep(0.2)  # nothing more comes
    btc = venue_config.by_symbol["BTC-USD"]
    assert member.bids == await engine_bids(engine.address, btc.id, venue_config)
    assert_chained(member.messages)
    assert member.messages[-1]["seq"] == batches[4].events[-1].sequence


async def test_an_entry_that_cannot_be_read_starts_the_books_over_and_the_feed_goes_on(
        engine, feed: MarketFeed, venue_config: VenueConfig, redis: Redis) -> None:
    member = await subscribe(feed, venue_config)
    batches = await engine_batches(engine.address, venue_config, 3)
    stream = Keys(venue_config.name).market(0)
    await publish(redis, stream, batches[0])
    await redis.xadd(stream, {FIELD_BATCH: b"\x1a\x05\x08"})  # no range, broken framing
    await until(lambda: sum(m["type"] == "snapshot" for m in member.messages) == 2,
                "a fresh snapshot")
    for batch in batches[1:]:
        await publish(redis, stream, batch)
    await until(lambda: len(member.bids) == 3, "three levels")
    btc = venue_config.by_symbol["BTC-USD"]
    assert member.bids == await engine_bids(engine.address, btc.id, venue_config)
    after_snapshot = member.messages[[m["type"] for m in member.messages].index("snapshot", 1):]
    assert_chained(after_snapshot)


async def test_the_submitter_publishes_each_batchs_market_entry_and_keeps_only_the_last_of_them(
        engine, venue_config: VenueConfig, redis: Redis, redis_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submitter_process, "MARKET_KEEP_MS", 30)
    batches = [batch.SerializeToString()
               for batch in await engine_batches(engine.address, venue_config, 6)]
    submitter = submitter_process.Submitter(
        Settings(redis_url=redis_url, engines=engine.address), venue_config)
    keys = Keys(venue_config.name)
    try:
        for batch in batches:
            await submitter.pumps[0]._confirm(batch, {}, {}, [])
            await asyncio.sleep(0.05)  # past MARKET_KEEP_MS: the entry before goes
    finally:
        await submitter.redis.aclose()
    assert await redis.xlen(keys.events(0)) == len(batches)
    kept = await redis.xrange(keys.market(0))
    # Each publishing trims to MARKET_KEEP_MS before the entry published before it.
    assert len(kept) == 2
    _, fields = kept[-1]
    first, last, cut = market_cut(batches[-1])
    assert fields == {b"batch": cut, b"first": str(first).encode(), b"last": str(last).encode()}
