"""Orders, executions and trades in a partition per day, against a real Postgres: rows
go to their day by the writer's own path, a read by id looks in one partition, and the
retention lets go of old days, never of an open order's, never losing a late row."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from venue.api.order_entry import _BY_ORDER_ID
from venue.db import partitions
from venue.db.migrate import migrate
from venue.enginepb import engine_pb2 as pb
from venue.queue.order_ids import SECONDS_PER_DAY, first_order_id, utc_day
from venue.writer.rows import Rows
from venue.writer.store import prepare, write_rows

TODAY = utc_day()


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a fresh migrated database, made ready as the writer's are."""
    connection = await asyncpg.connect(database_url)
    await prepare(connection)
    try:
        yield connection
    finally:
        await connection.close()


def at_ns(day: int) -> int:
    """Noon of a UTC day, in nanoseconds."""
    return (day * SECONDS_PER_DAY + 12 * 3600) * 10**9


def order_events(day: int, n: int, first_sequence: int, open_: bool = False) -> list[pb.Event]:
    """Order `n` of `day`: new, then (unless open_) filled against order n+1 of the same
    day, with the trade between them."""
    order_id, other = first_order_id(day) + n, first_order_id(day) + n + 1
    s = first_sequence

    def report(seq: int, status: int, exec_type: int, cum: int) -> pb.Event:
        return pb.Event(sequence=seq, timestamp_ns=at_ns(day) + seq, report=pb.ExecutionReport(
            order_id=order_id, client_order_id=f"c{order_id}", account_id=7, instrument_id=1,
            side=pb.SIDE_BUY, type=pb.ORDER_TYPE_LIMIT, time_in_force=pb.TIME_IN_FORCE_GTC,
            price=100, quantity=10, exec_type=exec_type, order_status=status,
            last_qty=cum, last_px=100 if cum else 0, cum_qty=cum, leaves_qty=10 - cum,
            cum_notional=cum * 100, trade_id=s if cum else 0))

    events = [report(s, pb.ORDER_STATUS_NEW, pb.EXEC_TYPE_NEW, 0)]
    if not open_:
        events += [pb.Event(sequence=s + 1, timestamp_ns=at_ns(day) + s + 1, trade=pb.Trade(
                       trade_id=s, instrument_id=1, price=100, quantity=10,
                       buy_order_id=order_id, sell_order_id=other,
                       aggressor_side=pb.SIDE_SELL)),
                   report(s + 2, pb.ORDER_STATUS_FILLED, pb.EXEC_TYPE_TRADE, 10)]
    return events


async def write(connection: asyncpg.Connection, events: list[pb.Event]) -> None:
    rows = Rows()
    rows.add(pb.ReportBatch(batch_id=events[0].sequence, partition=0, events=events))
    await write_rows(connection, rows)


async def partition_of(connection: asyncpg.Connection, table: str, where: str) -> list[str]:
    return [r[0] for r in await connection.fetch(
        f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {where} ORDER BY 1")]


async def test_a_migrated_venue_has_the_coming_days_and_a_default(connection):
    for table in partitions.TABLES:
        layout = await partitions.layout(connection, table)
        # Migrated today (the test template): the table as it was holds every day
        # before tomorrow; tomorrow and DAYS_AHEAD days have their own.
        assert layout.before == TODAY + 1
        assert sorted(layout.days) == list(range(TODAY + 1, TODAY + partitions.DAYS_AHEAD + 1))
        assert await connection.fetchval("SELECT to_regclass($1) IS NOT NULL",
                                         f"{table}_default")
    # Kept again: nothing new to make.
    assert await partitions.ensure(connection, TODAY) == []


async def test_the_writer_puts_each_row_in_its_day(connection):
    await write(connection, order_events(TODAY + 1, 1, 1) + order_events(TODAY + 2, 1, 4))
    day1, day2 = (partitions.day_name(TODAY + d) for d in (1, 2))
    for table in ("orders", "executions"):
        assert await partition_of(connection, table, f"order_id < {first_order_id(TODAY + 2)}") \
            == [f"{table}_p{day1}"]
        assert await partition_of(connection, table, f"order_id >= {first_order_id(TODAY + 2)}") \
            == [f"{table}_p{day2}"]
    assert await partition_of(connection, "trades", "true") == [
        f"trades_p{day1}", f"trades_p{day2}"]
    # Written again (a run read twice after a crash): stored once, as before.
    await write(connection, order_events(TODAY + 1, 1, 1) + order_events(TODAY + 2, 1, 4))
    assert [await connection.fetchval(f"SELECT count(*) FROM {t}")
            for t in ("orders", "executions", "trades")] == [2, 4, 2]


async def test_a_read_by_order_id_looks_in_one_partition(connection):
    await partitions.ensure(connection, TODAY + 30)  # more days than the first few
    await write(connection, order_events(TODAY + 2, 1, 1))
    # As the gateway's prepared statement runs once its plan is generic.
    await connection.execute("SET plan_cache_mode = force_generic_plan")
    await connection.execute(f"PREPARE by_id AS {_BY_ORDER_ID}")
    plan = "\n".join(r[0] for r in await connection.fetch(
        f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE by_id({first_order_id(TODAY + 2) + 1}, 7)"))
    scanned = {name for name in (await partitions.layout(connection, "orders")).days.values()
               if name in plan} | {n for n in ("orders_default",) if n in plan}
    assert scanned == {f"orders_p{partitions.day_name(TODAY + 2)}"}, plan
    assert "Subplans Removed" in plan


async def test_retention_lets_go_of_old_days_but_not_of_an_open_order(connection):
    later = TODAY + 20  # as if the venue had run twenty days
    assert len(await partitions.ensure(connection, later)) == 5 * len(partitions.TABLES)
    await write(connection, order_events(TODAY + 1, 1, 1)  # filled: goes
                + order_events(TODAY + 2, 1, 4, open_=True)  # open: its day stays
                + order_events(later - 2, 1, 5))  # within the retention
    assert await partitions.expire(connection, later, 0) == []  # 0 keeps everything
    gone = await partitions.expire(connection, later, 5)
    before = partitions.day_name(TODAY + 1)
    day = {d: partitions.day_name(d) for d in (TODAY + 1, TODAY + 2, TODAY + 3)}
    assert set(gone) == {
        f"orders_before_{before}", f"executions_before_{before}", f"trades_before_{before}",
        f"orders_p{day[TODAY + 1]}", f"executions_p{day[TODAY + 1]}",
        f"trades_p{day[TODAY + 1]}", f"trades_p{day[TODAY + 2]}",
        f"orders_p{day[TODAY + 3]}", f"executions_p{day[TODAY + 3]}",
        f"trades_p{day[TODAY + 3]}"}
    for name in gone:
        assert await connection.fetchval("SELECT to_regclass($1)", name) is None
    # The open order and its execution are where they were; the recent day is whole.
    open_id = first_order_id(TODAY + 2) + 1
    assert await connection.fetchval(
        "SELECT status FROM orders WHERE order_id = $1", open_id) == "new"
    assert await connection.fetchval(
        "SELECT count(*) FROM executions WHERE order_id = $1", open_id) == 1
    assert await connection.fetchval("SELECT count(*) FROM orders") == 2
    assert await connection.fetchval("SELECT count(*) FROM trades") == 1
    # Once it closes, its day goes at the next keeping.
    await connection.execute("UPDATE orders SET status = 'canceled' WHERE order_id = $1",
                             open_id)
    assert set(await partitions.expire(connection, later, 5)) == {
        f"orders_p{day[TODAY + 2]}", f"executions_p{day[TODAY + 2]}"}
    # A late report of a day let go is kept, in the default partition, not lost.
    await write(connection, order_events(TODAY + 1, 5, 100, open_=True))
    assert await partition_of(connection, "orders", f"order_id = {first_order_id(TODAY + 1) + 5}") \
        == ["orders_default"]


async def test_detach_leaves_each_day_a_table_of_its_own(connection):
    later = TODAY + 10
    await partitions.ensure(connection, later)
    await write(connection, order_events(TODAY + 1, 1, 1))
    gone = await partitions.expire(connection, later, 3, "detach")
    name = f"orders_p{partitions.day_name(TODAY + 1)}"
    assert name in gone
    assert await connection.fetchval(f"SELECT count(*) FROM {name}") == 1
    assert await connection.fetchval("SELECT count(*) FROM orders") == 0
    assert name not in (await partitions.layout(connection, "orders")).days.values()


async def test_rows_from_before_partitioning_stay_readable(postgres_server):
    """A venue migrated from plain tables: its rows are the `before` partition's, read and
    updated through the partitioned tables; new days have their own."""
    admin = await asyncpg.connect(postgres_server.url("postgres"))
    await admin.execute("CREATE DATABASE before_partitions")
    await admin.close()
    url = postgres_server.url("before_partitions")
    await migrate(url, until=18)
    connection = await asyncpg.connect(url)
    try:
        await prepare(connection)
        old = pb.ReportBatch(batch_id=1, partition=0, events=order_events(TODAY, 0, 1))
        for event in old.events:  # the ids of the counter before: small numbers
            if event.HasField("report"):
                event.report.order_id = 41
            else:
                event.trade.buy_order_id = 41
        rows = Rows()
        rows.add(old)
        await write_rows(connection, rows)
        assert "0018_day_partitions.py" in await migrate(url)
        await connection.close()
        connection = await asyncpg.connect(url)
        await prepare(connection)
        before = partitions.day_name(TODAY + 1)
        assert await partition_of(connection, "orders", "order_id = 41") == [
            f"orders_before_{before}"]
        assert await connection.fetchval("SELECT status FROM orders WHERE order_id = 41 "
                                         "AND account_id = 7") == "filled"
        assert await partition_of(connection, "trades", "true") == [f"trades_before_{before}"]
        # Read again, the old run changes nothing; a new day's order goes to its day.
        rows = Rows()
        rows.add(old)
        await write_rows(connection, rows)
        await write(connection, order_events(TODAY + 1, 1, 10))
        assert [await connection.fetchval(f"SELECT count(*) FROM {t}")
                for t in ("orders", "executions", "trades")] == [2, 4, 2]
    finally:
        await connection.close()
