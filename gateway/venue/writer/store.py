"""What the writer says to Postgres: the staging tables, the statements, and one run of
rows written in one transaction, idempotently.

Executions and trades are keyed by the engine's own numbering (partition, sequence /
trade id), and an order row only ever moves to a later sequence, so a run written twice
(a crash between COMMIT and XACK) changes nothing: a COPY that meets a row already there
is undone, and that run goes through staging tables, from which only what is missing is
moved.
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

_MOVE = """
INSERT INTO executions SELECT * FROM stage_executions ON CONFLICT DO NOTHING;
INSERT INTO trades SELECT * FROM stage_trades ON CONFLICT DO NOTHING;
"""

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


async def write_rows(connection: asyncpg.Connection, rows: Rows,
                     through: dict[int, int] | None = None,
                     after: Awaitable | None = None) -> None:
    """Write the rows in one transaction, with how far each partition is now persisted
    without a gap (`through`). With `after` (the write of the run before, on another
    connection), the new rows go in while it commits; orders already known are updated,
    and this commits, only once it has.

    Executions, trades and new orders are COPYed straight into their tables. When one
    of them is there already (the run is read again after a crash between COMMIT and
    XACK, or a gap was filled late) nothing of the attempt is kept, and the executions
    and trades go through staging tables, from which only the missing ones are moved.
    An order's row is inserted, or moved to a later sequence, never to an earlier one.
    """
    new_orders, updated_orders = rows.order_rows()
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
        await connection.execute(_MOVE)
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
