"""The writer against a real Postgres: batches land once, orders only move forward."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from redis.asyncio import Redis

from venue.writer import process as writer_module
from venue.contract.config import Settings, VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.contract.dead_letters import dead_letter_count
from venue.contract.entries import FIELD_BATCH, FIELD_MARKS
from venue.contract.keys import Keys, WRITERS_GROUP
from venue.writer.process import Writer
from venue.writer.rows import Rows
from venue.writer.store import prepare, write_rows

NS = 1_700_000_000_000_000_000


def report(sequence: int, order_id: int, status: int, exec_type: int, cum: int, leaves: int,
           last_qty: int = 0, last_px: int = 0, trade_id: int = 0) -> pb.Event:
    return pb.Event(sequence=sequence, timestamp_ns=NS + sequence * 1000, report=pb.ExecutionReport(
        order_id=order_id, client_order_id=f"c{order_id}", account_id=1, instrument_id=1,
        side=pb.SIDE_BUY, type=pb.ORDER_TYPE_LIMIT, time_in_force=pb.TIME_IN_FORCE_GTC,
        price=100, quantity=10, exec_type=exec_type, order_status=status, last_qty=last_qty,
        last_px=last_px, cum_qty=cum, leaves_qty=leaves, cum_notional=cum * 100,
        trade_id=trade_id))


def trade(sequence: int, trade_id: int) -> pb.Event:
    return pb.Event(sequence=sequence, timestamp_ns=NS + sequence * 1000, trade=pb.Trade(
        trade_id=trade_id, instrument_id=1, price=100, quantity=10, buy_order_id=1,
        sell_order_id=2, aggressor_side=pb.SIDE_SELL))


NEW = pb.ReportBatch(batch_id=1, partition=0, events=[
    report(1, 1, pb.ORDER_STATUS_NEW, pb.EXEC_TYPE_NEW, 0, 10)])
FILLED = pb.ReportBatch(batch_id=2, partition=0, events=[
    trade(2, 1),
    report(3, 1, pb.ORDER_STATUS_FILLED, pb.EXEC_TYPE_TRADE, 10, 0, 10, 100, trade_id=1)])


def rows_of(*batches: pb.ReportBatch) -> Rows:
    rows = Rows()
    for batch in batches:
        rows.add(batch)
    return rows


async def table_counts(connection: asyncpg.Connection) -> tuple[int, int, int]:
    return tuple([await connection.fetchval(f"SELECT count(*) FROM {table}")
                  for table in ("orders", "executions", "trades")])


async def staged(database_url: str) -> asyncpg.Connection:
    connection = await asyncpg.connect(database_url)
    await prepare(connection)
    return connection


async def test_a_batch_written_twice_is_stored_once(database_url: str):
    connection = await staged(database_url)
    await write_rows(connection, rows_of(NEW, FILLED))
    await write_rows(connection, rows_of(NEW, FILLED))
    assert await table_counts(connection) == (1, 2, 1)
    row = await connection.fetchrow("SELECT * FROM orders WHERE order_id = 1")
    assert (row["status"], row["cum_qty"], row["leaves_qty"], row["last_sequence"]) == (
        "filled", 10, 0, 3)
    await connection.close()


async def test_an_order_never_moves_back_to_an_earlier_report(database_url: str):
    connection = await staged(database_url)
    await write_rows(connection, rows_of(FILLED))
    await write_rows(connection, rows_of(NEW))  # late replay of the first report
    row = await connection.fetchrow("SELECT status, cum_qty, created_at FROM orders")
    assert (row["status"], row["cum_qty"]) == ("filled", 10)
    assert await table_counts(connection) == (1, 2, 1)
    await connection.close()


async def test_within_one_run_the_latest_report_of_an_order_wins(database_url: str):
    connection = await staged(database_url)
    await write_rows(connection, rows_of(NEW, FILLED))
    row = await connection.fetchrow("SELECT status, last_sequence, created_at, updated_at "
                                    "FROM orders")
    assert (row["status"], row["last_sequence"]) == ("filled", 3)
    assert row["created_at"] < row["updated_at"]
    await connection.close()


async def test_an_order_written_before_moves_on_in_a_later_run(database_url: str):
    connection = await staged(database_url)
    await write_rows(connection, rows_of(NEW))
    await write_rows(connection, rows_of(FILLED))
    plain = await asyncpg.connect(database_url)  # read without the writer's codec
    row = await plain.fetchrow("SELECT status, cum_qty, last_sequence, created_at, "
                               "updated_at FROM orders")
    await plain.close()
    assert (row["status"], row["cum_qty"], row["last_sequence"]) == ("filled", 10, 3)
    epoch = datetime.fromtimestamp(0, UTC)
    assert (row["created_at"], row["updated_at"]) == (
        epoch + timedelta(microseconds=(NS + 1000) // 1000),
        epoch + timedelta(microseconds=(NS + 3000) // 1000))
    assert await table_counts(connection) == (1, 2, 1)
    await connection.close()


async def test_a_run_read_again_with_new_entries_stores_each_once(database_url: str):
    connection = await staged(database_url)
    await write_rows(connection, rows_of(NEW))
    await write_rows(connection, rows_of(NEW, FILLED))  # crash before XACK, more since
    assert await table_counts(connection) == (1, 2, 1)
    assert await connection.fetchval("SELECT status FROM orders") == "filled"
    await connection.close()


async def test_rows_hold_every_column_as_the_engine_reported_it(database_url: str):
    canceled = pb.Event(sequence=4, timestamp_ns=NS + 4_567_891, report=pb.ExecutionReport(
        order_id=2, client_order_id="c-ü", account_id=7, instrument_id=3, side=pb.SIDE_SELL,
        type=pb.ORDER_TYPE_MARKET, time_in_force=pb.TIME_IN_FORCE_IOC, post_only=True,
        price=0, quantity=5, exec_type=pb.EXEC_TYPE_CANCELED,
        order_status=pb.ORDER_STATUS_CANCELED, cum_qty=2, leaves_qty=0, cum_notional=2 * 99,
        reject_reason=pb.REJECT_REASON_SELF_TRADE))
    connection = await staged(database_url)
    await write_rows(connection, rows_of(NEW, FILLED, pb.ReportBatch(partition=0,
                                                                      events=[canceled])))
    at = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=(NS + 4_567_891) // 1000)
    execution = await connection.fetchrow("SELECT * FROM executions WHERE sequence = 4")
    assert dict(execution) == {
        "partition": 0, "sequence": 4, "order_id": 2, "exec_type": "canceled",
        "order_status": "canceled", "last_qty": 0, "last_px": 0, "cum_qty": 2,
        "leaves_qty": 0, "cum_notional": 198, "reject_reason": "self_trade", "trade_id": None,
        "engine_time": at}
    order = await connection.fetchrow("SELECT * FROM orders WHERE order_id = 2")
    assert dict(order) == {
        "order_id": 2, "client_order_id": "c-ü", "account_id": 7, "instrument_id": 3,
        "side": "sell", "type": "market", "time_in_force": "ioc", "post_only": True,
        "price": 0, "quantity": 5, "status": "canceled", "cum_qty": 2, "leaves_qty": 0,
        "cum_notional": 198, "reject_reason": "self_trade", "partition": 0,
        "last_sequence": 4, "created_at": at, "updated_at": at}
    fill = await connection.fetchrow("SELECT trade_id, reject_reason, last_qty, last_px "
                                     "FROM executions WHERE sequence = 3")
    assert tuple(fill) == (1, None, 10, 100)
    trade_row = await connection.fetchrow("SELECT * FROM trades")
    assert dict(trade_row) == {
        "partition": 0, "trade_id": 1, "sequence": 2, "instrument_id": 1, "price": 100,
        "quantity": 10, "buy_order_id": 1, "sell_order_id": 2, "aggressor_side": "sell",
        "engine_time": datetime.fromtimestamp(0, UTC) + timedelta(microseconds=NS // 1000 + 2)}
    await connection.close()


async def test_runs_in_flight_together_commit_every_order_in_order(
        redis_url: str, database_url: str, monkeypatch, persisted_through):
    # One entry per run, no pause between runs: two transactions are in flight at once,
    # and each run fills the order the run before it made, whose insert has not
    # committed yet. Every other run is heavy (a thousand fills of another order before
    # its new one), so the light run after it reaches that order first.
    monkeypatch.setattr(writer_module, "_READ_COUNT", 1)
    monkeypatch.setattr(writer_module, "_INTERVAL_S", 0.0)
    redis = Redis.from_url(redis_url)
    stream = Keys(VenueConfig().name).events(0)
    sequence, batches = 0, []

    def event(order_id: int, status: int, exec_type: int, cum: int) -> pb.Event:
        nonlocal sequence
        sequence += 1
        return report(sequence, order_id, status, exec_type, cum, 10 - cum)

    for order_id in range(1, 101):
        events = []
        if order_id % 2:
            events += [event(1_000_000 + order_id, pb.ORDER_STATUS_PARTIALLY_FILLED,
                             pb.EXEC_TYPE_TRADE, 1) for _ in range(1000)]
        events.append(event(order_id, pb.ORDER_STATUS_NEW, pb.EXEC_TYPE_NEW, 0))
        if order_id > 1:
            events.append(event(order_id - 1, pb.ORDER_STATUS_FILLED, pb.EXEC_TYPE_TRADE, 10))
        batches.append(pb.ReportBatch(batch_id=order_id, partition=0, events=events,
                                      next_sequence=sequence + 1))
    writer = Writer(Settings(redis_url=redis_url, database_url=database_url,
                             engines="127.0.0.1:1"))
    stop = asyncio.Event()
    running = asyncio.create_task(writer.run(stop))
    connection = await asyncpg.connect(database_url)
    try:
        for batch in batches:
            await redis.xadd(stream, {FIELD_BATCH: batch.SerializeToString()})
        assert await persisted_through(connection, sequence, running) == sequence
        statuses = await connection.fetch("SELECT status FROM orders WHERE order_id <= 100 "
                                          "ORDER BY order_id")
        assert [r["status"] for r in statuses] == ["filled"] * 99 + ["new"]
        assert await connection.fetchval("SELECT count(*) FROM executions") == sequence
        assert await redis.xpending(stream, WRITERS_GROUP) == {
            "pending": 0, "min": None, "max": None, "consumers": []}
    finally:
        stop.set()
        try:
            await asyncio.wait_for(running, 10)  # one stuck in a lock wait is cancelled
        except TimeoutError:
            pass
        await connection.close()
        await redis.aclose()


def test_a_local_postgres_keeps_minimal_wal(database_url: str):
    """Nothing reads a local venue's WAL but crash recovery: it keeps the least, and so
    drops each finished segment from the page cache (see venue.db.LOCAL_WAL_ARGS)."""
    async def settings() -> dict[str, str]:
        connection = await asyncpg.connect(database_url)
        try:
            return {name: await connection.fetchval(f"SHOW {name}")
                    for name in ("wal_level", "max_wal_senders")}
        finally:
            await connection.close()

    assert asyncio.run(settings()) == {"wal_level": "minimal", "max_wal_senders": "0"}


async def test_what_cannot_be_stored_is_set_aside_and_the_rest_is_written(
        redis_url: str, database_url: str, persisted_through):
    """A corrupt entry, one without its batch, a report with an exec type the writer does
    not know, one Postgres refuses (a NUL in its clientOrderId) and malformed marks:
    each goes to the dead-letter stream with its error, and every good report around
    them is in Postgres."""
    redis = Redis.from_url(redis_url)
    keys = Keys(VenueConfig().name)
    stream = keys.events(0)

    def batch(*events: pb.Event) -> bytes:
        return pb.ReportBatch(partition=0, events=events,
                              next_sequence=events[-1].sequence + 1).SerializeToString()

    unknown = report(3, 3, pb.ORDER_STATUS_NEW, pb.EXEC_TYPE_NEW, 0, 10)
    unknown.report.exec_type = 77
    nul = report(5, 5, pb.ORDER_STATUS_NEW, pb.EXEC_TYPE_NEW, 0, 10)
    nul.report.client_order_id = "a\x00b"
    entries = [
        {FIELD_BATCH: batch(report(1, 1, pb.ORDER_STATUS_NEW, pb.EXEC_TYPE_NEW, 0, 10))},
        {FIELD_BATCH: b"\x1a\xff\xff\x08garbage"},
        {"something": b"else"},
        {FIELD_BATCH: batch(report(2, 2, pb.ORDER_STATUS_NEW, pb.EXEC_TYPE_NEW, 0, 10),
                            unknown, report(4, 4, pb.ORDER_STATUS_NEW, pb.EXEC_TYPE_NEW, 0, 10))},
        {FIELD_BATCH: batch(nul)},
        {FIELD_BATCH: batch(report(6, 6, pb.ORDER_STATUS_NEW, pb.EXEC_TYPE_NEW, 0, 10)),
         FIELD_MARKS: b"not marks;"},
        {FIELD_BATCH: batch(report(7, 1, pb.ORDER_STATUS_FILLED, pb.EXEC_TYPE_TRADE, 10, 0,
                                   10, 100, trade_id=1))},
    ]
    for fields in entries:
        await redis.xadd(stream, fields)
    writer = Writer(Settings(redis_url=redis_url, database_url=database_url,
                             engines="127.0.0.1:1"))
    stop = asyncio.Event()
    running = asyncio.create_task(writer.run(stop))
    connection = await asyncpg.connect(database_url)
    try:
        assert await persisted_through(connection, 7, running) == 7 and not running.done()
        orders = await connection.fetch("SELECT order_id, status FROM orders ORDER BY order_id")
        assert [(r["order_id"], r["status"]) for r in orders] == [
            (1, "filled"), (2, "new"), (4, "new"), (6, "new")]
        sequences = await connection.fetch("SELECT sequence FROM executions ORDER BY sequence")
        assert [r["sequence"] for r in sequences] == [1, 2, 4, 6, 7]
        letters = [fields for _, fields in await redis.xrange(keys.dead_letters)]
        assert sorted((f[b"reason"], f.get(b"sequence")) for f in letters) == sorted([
            (b"undecodable", None), (b"malformed_entry", None), (b"unknown_value", b"3"),
            (b"unstorable", None), (b"malformed_entry", None)])
        assert all(f[b"part"] == b"writer" and f[b"error"] and f[b"at"] for f in letters)
        by_reason = {f[b"reason"]: f for f in letters}
        assert by_reason[b"unknown_value"][b"data"] == unknown.SerializeToString()
        assert b"22021" in by_reason[b"unstorable"][b"error"] or \
            b"0x00" in by_reason[b"unstorable"][b"error"]
        assert await redis.xpending(stream, WRITERS_GROUP) == {
            "pending": 0, "min": None, "max": None, "consumers": []}
        assert await dead_letter_count(redis, keys) == 5
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await connection.close()
        await redis.aclose()
