"""orders, executions and trades become tables partitioned by day (venue.db.partitions).

Each table as it was becomes the partition of every day before tomorrow,
`<table>_before_YYYYMMDD` (its indexes are kept and serve the new table's); tomorrow
and the days after get day partitions, and a default partition takes a row of no day.
Keys must hold the partition key: executions are keyed by (partition, sequence,
order_id) and trades by (partition, trade_id, engine_time), which identify the same
rows as before (an engine event names one order, and a trade's time is journaled
with it: replayed, it is the same).
"""

from __future__ import annotations

import asyncpg

from venue.db.partitions import bound, day_name, ensure
from venue.queue.order_ids import utc_day

# Per table: its partition key, its primary key (when it changes, the old table's is
# rebuilt so), and its other indexes (name, definition).
_TABLES = {
    "orders": ("order_id", "account_id, order_id", [
        ("orders_account_client_order_id", "(account_id, client_order_id)"),
        ("orders_open", "(account_id, order_id) WHERE status IN ('new', 'partially_filled')")]),
    "executions": ("order_id", "partition, sequence, order_id", []),
    "trades": ("engine_time", "partition, trade_id, engine_time", [
        ("trades_instrument_time", "(instrument_id, engine_time DESC)")]),
}


async def apply(connection: asyncpg.Connection) -> None:
    first = utc_day() + 1  # the first day with partitions of its own
    for table, (key, primary, indexes) in _TABLES.items():
        before = f"{table}_before_{day_name(first)}"
        rekey = ("" if table == "orders" else
                 f"ALTER TABLE {before} DROP CONSTRAINT {before}_pkey,"
                 f" ADD CONSTRAINT {before}_pkey PRIMARY KEY ({primary});")
        await connection.execute(f"""
            ALTER TABLE {table} RENAME TO {before};
            ALTER TABLE {before} RENAME CONSTRAINT {table}_pkey TO {before}_pkey;
            {rekey}
            CREATE TABLE {table} (LIKE {before} INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                                  INCLUDING STORAGE) PARTITION BY RANGE ({key});
            ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({primary})""")
        for name, definition in indexes:
            await connection.execute(f"ALTER INDEX {name} RENAME TO {before}_{name[len(table) + 1:]};"
                                     f"CREATE INDEX {name} ON {table} {definition}")
        await connection.execute(f"""
            ALTER TABLE {table} ATTACH PARTITION {before}
                FOR VALUES FROM (MINVALUE) TO ({bound(table, first)});
            CREATE TABLE {table}_default PARTITION OF {table} DEFAULT""")
    await ensure(connection, utc_day())
