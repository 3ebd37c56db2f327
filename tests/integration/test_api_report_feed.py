"""The gateway's report feed against a real engine and a real Redis: every sequence of a
partition reaches a socket once and in order, whatever the events stream repeats or
skips."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from redis.asyncio import Redis

from venue.api.engines import EngineChannels
from venue.api.report_feed import ReportFeed
from venue.contract.config import Settings, VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.contract.entries import FIELD_BATCH
from venue.contract.keys import Keys

pytestmark = pytest.mark.integration

ACCOUNT = 7
OTHER_ACCOUNT = 8


class Sink:
    """Stands where a socket stands: collects what the feed hands it."""

    def __init__(self, account_id: int) -> None:
        self.account_id = account_id
        self.sequences: list[int] = []

    def on_report(self, partition: int, event: pb.Event) -> None:
        assert event.report.account_id == self.account_id
        self.sequences.append(event.sequence)


async def engine_batches(address: str, venue: VenueConfig, count: int,
                         first: int = 1) -> list[pb.ReportBatch]:
    """`count` report batches from the engine: one resting order each, alternating owners;
    numbered (order id, stream ms, price below 10000) from `first`."""
    btc = venue.by_symbol["BTC-USD"]
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(
            "/tradingvenue.engine.v1.MatchingEngine/Submit",
            request_serializer=pb.CommandBatch.SerializeToString,
            response_deserializer=pb.ReportBatch.FromString)()
        batches = []
        for number in range(first, first + count):
            await call.write(pb.CommandBatch(batch_id=number, commands=[pb.Command(
                shard=venue.shard_of(btc), stream_ms=number, stream_seq=0,
                new_order=pb.NewOrder(
                    order_id=number, client_order_id=f"o-{number}",
                    account_id=ACCOUNT if number % 2 else OTHER_ACCOUNT, instrument_id=btc.id,
                    side=pb.SIDE_BUY, type=pb.ORDER_TYPE_LIMIT,
                    time_in_force=pb.TIME_IN_FORCE_GTC, price=10000 - number,
                    quantity=100))]))
            batches.append(await call.read())
        await call.done_writing()
    return batches


async def test_the_feed_skips_repeats_and_fills_gaps_from_the_engine(
        engine, venue_config: VenueConfig, redis: Redis) -> None:
    batches = await engine_batches(engine.address, venue_config, 5)
    mine = [event.sequence for batch in batches for event in batch.events
            if event.WhichOneof("body") == "report" and event.report.account_id == ACCOUNT]
    assert len(mine) == 3

    engines = EngineChannels(Settings(engines=engine.address))
    feed = ReportFeed(redis, venue_config, engines)
    sink = Sink(ACCOUNT)
    try:
        await feed.join(sink)
        stream = Keys(venue_config.name).events(0)
        # A repeat (a submitter's gap fill publishing a batch again) and a gap (two
        # batches that never reached the stream).
        for index in (0, 1, 0, 4):
            await redis.xadd(stream, {FIELD_BATCH: batches[index].SerializeToString()})
        async with asyncio.timeout(10):
            while len(sink.sequences) < len(mine):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # nothing more comes
        assert sink.sequences == mine
    finally:
        feed.leave(sink)
        await feed.close()
        await engines.close()
