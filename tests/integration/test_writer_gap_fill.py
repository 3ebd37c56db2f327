"""Reports the engine emitted but no submitter published still reach Postgres, once."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
from redis.asyncio import Redis

from venue.contract.config import Settings
from venue.enginepb import engine_pb2 as pb
from venue.contract.wire import command_batch, source_fields
from venue.local.engine import EngineProcess
from venue.contract.keys import Keys
from venue.writer.process import Writer


def order(order_id: int, side: int, price: int) -> bytes:
    return pb.Command(new_order=pb.NewOrder(
        order_id=order_id, client_order_id=f"c{order_id}", account_id=order_id % 3 + 1,
        instrument_id=1, side=side, type=pb.ORDER_TYPE_LIMIT,
        time_in_force=pb.TIME_IN_FORCE_GTC, price=price, quantity=10)).SerializeToString()


async def submit_unpublished(engine: EngineProcess) -> pb.ReportBatch:
    """Like a submitter killed after the engine answered: applied, never published."""
    commands = [order(i, pb.SIDE_BUY if i % 2 else pb.SIDE_SELL, 100 + i % 5)
                for i in range(1, 41)]
    async with grpc.aio.insecure_channel(engine.address) as channel:
        call = channel.stream_stream("/tradingvenue.engine.v1.MatchingEngine/Submit")()
        await call.write(command_batch(1, [(b"", source_fields(1, 1000, seq), [command])
                                           for seq, command in enumerate(commands, 1)]))
        reply = pb.ReportBatch.FromString(await call.read())
        await call.done_writing()
    return reply


async def test_the_writer_replays_what_no_submitter_published(
        engine: EngineProcess, redis_url: str, database_url: str, persisted_through):
    reply = await submit_unpublished(engine)
    head = reply.next_sequence - 1
    kinds = [event.WhichOneof("body") for event in reply.events]
    writer = Writer(Settings(redis_url=redis_url, database_url=database_url,
                             engines=engine.address))
    stop = asyncio.Event()
    running = asyncio.create_task(writer.run(stop))
    connection = await asyncpg.connect(database_url)
    try:
        assert await persisted_through(connection, head) == head
        assert await connection.fetchval("SELECT count(*) FROM orders") == 40
        assert await connection.fetchval("SELECT count(*) FROM executions") == \
            kinds.count("report")
        assert await connection.fetchval("SELECT count(*) FROM trades") == kinds.count("trade")
        assert kinds.count("trade") > 0
    finally:
        stop.set()
        await running
        await connection.close()
