"""What the writer says to Postgres: the staging tables, the statements, and one run of
rows written in one transaction, idempotently.

Executions and trades are keyed by the engine's own numbering (partition, sequence /
trade id), and an order row only ever moves to a later sequence, so a run written twice
(a crash between COMMIT and XACK) changes nothing: a COPY that meets a row already there
is undone, and that run goes through staging tables, from which only what is missing is
moved. The trades a transaction inserts, and only those, are folded into the candles
of their minute (candles_1m) and hour (candles_1h) in it: a trade is counted once,
whoever writes it and how often.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta

import asyncpg

from venue.writer.copy_format import (EXECUTION_COLUMNS, ORDER_COLUMNS, ORDER_SQL_TYPES, PG_EPOCH,
                                      TRADE_COLUMNS, copy_rows)
from venue.writer.rows import Rows

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_executions (LIKE executions) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_trades (LIKE trades) ON COMMIT DELETE ROWS;
"""


async def prepare(connection: asyncpg.Connection) -> None:
    """Make a connection ready for write_rows: its staging tables, and timestamptz
    values sent as Postgres keeps them, microseconds since 2000-01-01 UTC (read back as
    datetimes): the writer has them so, and making datetime objects was a tenth of it."""
    await connection.execute(_STAGING)
    await connection.set_type_codec(
        "timestamptz", schema="pg_catalog", format="tuple",
        encoder=lambda microseconds: (microseconds,),
        decoder=lambda value: PG_EPOCH + timedelta(microseconds=value[0]))

CANDLE_COLUMNS = ("instrument_id", "minute", "open", "high", "low", "close", "volume",
                  "trades", "open_time", "open_sequence", "close_time", "close_sequence")
_CANDLE_SQL_TYPES = ("integer", "timestamptz", "bigint", "bigint", "bigint", "bigint",
                     "bigint", "bigint", "timestamptz", "bigint", "timestamptz", "bigint")
_COLUMNS = ", ".join(CANDLE_COLUMNS)
_HOUR_COLUMNS = _COLUMNS.replace("minute", "hour")


def _merge(bucket: str) -> str:
    """A bucket's candle meets the one already there: extremes and sums merge, and the
    open (close) is the one of the two whose trade is first (last) by (time, sequence)."""
    earlier = "(EXCLUDED.open_time, EXCLUDED.open_sequence) < (c.open_time, c.open_sequence)"
    later = "(EXCLUDED.close_time, EXCLUDED.close_sequence) > (c.close_time, c.close_sequence)"
    return f"""ON CONFLICT (instrument_id, {bucket}) DO UPDATE SET
    high = greatest(c.high, EXCLUDED.high), low = least(c.low, EXCLUDED.low),
    volume = c.volume + EXCLUDED.volume, trades = c.trades + EXCLUDED.trades,
    open = CASE WHEN {earlier} THEN EXCLUDED.open ELSE c.open END,
    open_sequence = CASE WHEN {earlier} THEN EXCLUDED.open_sequence ELSE c.open_sequence END,
    open_time = least(c.open_time, EXCLUDED.open_time),
    close = CASE WHEN {later} THEN EXCLUDED.close ELSE c.close END,
    close_sequence = CASE WHEN {later} THEN EXCLUDED.close_sequence ELSE c.close_sequence END,
    close_time = greatest(c.close_time, EXCLUDED.close_time)"""


def _folding(run: str, before: str = "") -> str:
    """One statement that folds a run's minute candles (the rows of the query `run`, in
    CANDLE_COLUMNS) into candles_1m, and rolled up into hours, into candles_1h. Rows are
    taken in (instrument, minute) order, so writers that meet lock them in one order."""
    return f"""
WITH {before}run ({_COLUMNS}) AS ({run}),
minutes AS (
    INSERT INTO candles_1m AS c ({_COLUMNS}) SELECT * FROM run ORDER BY 1, 2
    {_merge("minute")})
INSERT INTO candles_1h AS c ({_HOUR_COLUMNS})
SELECT instrument_id, date_bin('1 hour', minute, timestamptz '2000-01-01 00:00:00+00'),
       (array_agg(open ORDER BY open_time, open_sequence))[1], max(high), min(low),
       (array_agg(close ORDER BY close_time DESC, close_sequence DESC))[1],
       sum(volume), sum(trades),
       min(open_time), (array_agg(open_sequence ORDER BY open_time, open_sequence))[1],
       max(close_time),
       (array_agg(close_sequence ORDER BY close_time DESC, close_sequence DESC))[1]
FROM run GROUP BY 1, 2 ORDER BY 1, 2
{_merge("hour")}"""


# The run's candles (Rows.candle_values, made as its rows were read) when every trade of
# the run is new: one array per column.
_FOLD_CANDLES = _folding("SELECT * FROM unnest({})".format(
    ", ".join(f"${n}::{t}[]" for n, t in enumerate(_CANDLE_SQL_TYPES, 1))))

# The trades of the run not stored yet, and their candles: only what this INSERT inserts
# is returned, so a trade another transaction stored (committed, or committing while this
# waits on its key) is not counted again.
_MOVE_TRADES = _folding("""
    SELECT instrument_id, date_bin('1 minute', engine_time, timestamptz '2000-01-01 00:00:00+00'),
           (array_agg(price ORDER BY engine_time, sequence))[1], max(price), min(price),
           (array_agg(price ORDER BY engine_time DESC, sequence DESC))[1],
           sum(quantity), count(*),
           min(engine_time), (array_agg(sequence ORDER BY engine_time, sequence))[1],
           max(engine_time), (array_agg(sequence ORDER BY engine_time DESC, sequence DESC))[1]
    FROM moved GROUP BY 1, 2""", before="""moved AS (
    INSERT INTO trades SELECT * FROM stage_trades ON CONFLICT DO NOTHING
    RETURNING instrument_id, engine_time, sequence, price, quantity),
""")

_MOVE_EXECUTIONS = "INSERT INTO executions SELECT * FROM stage_executions ON CONFLICT DO NOTHING"

# Orders that may have a row already, as one array per column: not through a temp table,
# whose use costs every commit a truncation of each ON COMMIT DELETE ROWS table.
_UPSERT_ORDERS = f"""
INSERT INTO orders ({", ".join(ORDER_COLUMNS)})
SELECT * FROM unnest({", ".join(f"${n}::{t}[]" for n, t in enumerate(ORDER_SQL_TYPES, 1))})
ON CONFLICT (account_id, order_id) DO UPDATE SET
    price = EXCLUDED.price, quantity = EXCLUDED.quantity, status = EXCLUDED.status,
    cum_qty = EXCLUDED.cum_qty, leaves_qty = EXCLUDED.leaves_qty,
    cum_notional = EXCLUDED.cum_notional, reject_reason = EXCLUDED.reject_reason,
    last_sequence = EXCLUDED.last_sequence, updated_at = EXCLUDED.updated_at
WHERE orders.last_sequence < EXCLUDED.last_sequence
"""

_PROGRESS = """
INSERT INTO partition_progress (partition, persisted_through) VALUES ($1, $2)
ON CONFLICT (partition) DO UPDATE SET persisted_through = EXCLUDED.persisted_through,
    updated_at = now()
WHERE partition_progress.persisted_through < EXCLUDED.persisted_through
"""

async def _upsert_orders(connection: asyncpg.Connection, values: list[tuple]) -> None:
    await connection.execute(_UPSERT_ORDERS, *(list(column) for column in zip(*values)))


async def _fold_candles(connection: asyncpg.Connection, values: list[tuple]) -> None:
    await connection.execute(_FOLD_CANDLES, *(list(column) for column in zip(*values)))


async def write_rows(connection: asyncpg.Connection, rows: Rows,
                     through: dict[int, int] | None = None,
                     after: Awaitable | None = None) -> None:
    """Write the rows in one transaction, with how far each partition is now persisted
    without a gap (`through`). With `after` (the write of the run before, on another
    connection), the new rows go in while it commits; orders already known are updated,
    and this commits, only once it has.

    Executions, trades and new orders are COPYed straight into their tables, and the
    run's candles folded into candles_1m and candles_1h. When one of them is there
    already (the run is read again after a crash between COMMIT and XACK, or a gap was
    filled late) nothing of the attempt is kept, and the executions and trades go
    through staging tables, from which only the missing ones are moved, and only the
    trades moved are folded.
    An order's row is inserted, or moved to a later sequence, never to an earlier one.
    """
    new_orders, updated_orders = rows.order_rows()
    candles = rows.candle_values()
    try:
        async with connection.transaction():
            if rows.executions:
                await copy_rows(connection, "executions", EXECUTION_COLUMNS, rows.executions)
            if rows.trades:
                await copy_rows(connection, "trades", TRADE_COLUMNS, rows.trades)
            if new_orders:
                await copy_rows(connection, "orders", ORDER_COLUMNS, new_orders)
            if after is not None:
                # Not before: an order updated here may be one the run before inserts,
                # and the insert must not wait on this transaction while it waits here.
                await after
            if updated_orders:
                await _upsert_orders(connection, updated_orders)
            if candles:  # after `after` too: the run before may fold the same minutes
                await _fold_candles(connection, candles)
            if through:
                await connection.executemany(_PROGRESS, list(through.items()))
        return
    except asyncpg.UniqueViolationError:
        pass
    if after is not None:
        await after
    async with connection.transaction():
        if rows.executions:
            await copy_rows(connection, "stage_executions", EXECUTION_COLUMNS, rows.executions)
        if rows.trades:
            await copy_rows(connection, "stage_trades", TRADE_COLUMNS, rows.trades)
        if rows.executions:
            await connection.execute(_MOVE_EXECUTIONS)
        if rows.trades:
            await connection.execute(_MOVE_TRADES)
        if rows.order_ids:
            await _upsert_orders(connection, rows.order_values())
        if through:
            await connection.executemany(_PROGRESS, list(through.items()))


async def persisted_through(connection: asyncpg.Connection) -> dict[int, int]:
    return {row["partition"]: row["persisted_through"] for row in
            await connection.fetch("SELECT partition, persisted_through FROM partition_progress")}


def cannot_store(error: BaseException) -> bool:
    """Postgres refused the data itself (SQLSTATE class 22, data exception, or 23,
    integrity constraint): sending it again fails again. Anything else may heal."""
    return isinstance(error, asyncpg.PostgresError) and (error.sqlstate or "")[:2] in ("22", "23")
