"""Postgres keeps orders, executions and trades in a partition per UTC day, and lets go
of the days older than the retention.

- `orders` and `executions` by order id, whose day is the day the id was taken
  (venue.queue.order_ids): an order and its executions share a partition, and a read
  by id looks in that one partition however many days are kept.
- `trades` by engine_time.

Besides its day partitions `<table>_pYYYYMMDD`, each table has `<table>_before_YYYYMMDD`,
the rows from before the tables were partitioned (migration 0018), every day before
that date; and `<table>_default`, for a row of no day partition (one of a day already
let go, arriving late): kept, never lost, and empty in the normal course.

The writer keeps the partitions (`keep`, as it starts and then hourly): the days from
yesterday to DAYS_AHEAD days ahead exist before a row needs them, and with a retention
of N days (VENUE_RETENTION_DAYS, spec.postgres.retention.days; 0, the default, keeps
everything), each day that ended more than N days ago is dropped, or detached to be
archived (VENUE_RETENTION_ACTION): orders and executions together, and only once none
of the day's orders is open. An open order, its executions and its day stay.
Candles are kept (a minute per instrument and minute traded).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import get_args

import asyncpg

from venue.contract.config import RetentionAction
from venue.queue.order_ids import first_order_id

log = logging.getLogger("venue.db.partitions")

# Each partitioned table and what divides it into days.
BY_ORDER_ID = ("orders", "executions")
BY_ENGINE_TIME = ("trades",)
TABLES = BY_ORDER_ID + BY_ENGINE_TIME
DAYS_AHEAD = 3
# Changing a partitioned table's partitions takes a lock every writer's insert waits
# behind: one not granted within this is tried again at the next keeping.
_LOCK_TIMEOUT = "2s"
_KEEP_LOCK = 0x7476_7061_7274  # "tvpart": one keeper at a time among the writers
_EPOCH = date(1970, 1, 1)
_NAME = re.compile(r"^(?P<table>[a-z]+)_(?:p(?P<day>\d{8})|before_(?P<before>\d{8})|default)$")
# An order in one of these is open (as migration 0014's orders_open index says).
_OPEN = "status IN ('new', 'partially_filled')"


def day_name(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).strftime("%Y%m%d")


def _day_of_name(text: str) -> int:
    return (date(int(text[:4]), int(text[4:6]), int(text[6:])) - _EPOCH).days


def bound(table: str, day: int) -> str:
    """The partition key's value where `day` begins, as SQL."""
    if table in BY_ORDER_ID:
        return str(first_order_id(day))
    return f"'{(_EPOCH + timedelta(days=day)).isoformat()} 00:00:00+00'"


@dataclass
class Layout:
    """One table's partitions."""

    table: str
    days: dict[int, str] = field(default_factory=dict)  # day -> its partition
    before: int | None = None  # the first day not in the partition from before
    before_name: str | None = None

    def covers(self, day: int) -> bool:
        return day in self.days or (self.before is not None and day < self.before)

    def expired(self, cutoff: int) -> list[tuple[int, str]]:
        """The partitions wholly before day `cutoff`, oldest first (the one from before
        partitioning as its last day)."""
        found = [(day, name) for day, name in self.days.items() if day < cutoff]
        if self.before is not None and self.before <= cutoff:
            found.append((self.before - 1, self.before_name))
        return sorted(found)


async def layout(connection: asyncpg.Connection, table: str) -> Layout:
    found = Layout(table)
    for row in await connection.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = $1::regclass", table):
        match = _NAME.match(row["relname"])
        if not match or match["table"] != table:
            continue
        if match["day"]:
            found.days[_day_of_name(match["day"])] = row["relname"]
        elif match["before"]:
            found.before, found.before_name = _day_of_name(match["before"]), row["relname"]
    return found


async def create_day(connection: asyncpg.Connection, table: str, day: int) -> str:
    name = f"{table}_p{day_name(day)}"
    await connection.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES "
                             f"FROM ({bound(table, day)}) TO ({bound(table, day + 1)})")
    return name


async def ensure(connection: asyncpg.Connection, today: int,
                 ahead: int = DAYS_AHEAD) -> list[str]:
    """Create each table's partitions of the days from yesterday to `ahead` days after
    `today` that none covers yet; returns their names. A day the default partition
    holds rows of cannot be made (said loudly; its rows stay where they are)."""
    created = []
    for table in TABLES:
        have = await layout(connection, table)
        for day in range(today - 1, today + ahead + 1):
            if have.covers(day):
                continue
            try:
                async with connection.transaction():
                    await connection.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
                    created.append(await create_day(connection, table, day))
            except asyncpg.PostgresError as error:
                log.error("no partition of %s for %s: %s", table, day_name(day), error)
    return created


async def _let_go(connection: asyncpg.Connection, table: str, name: str, action: str) -> None:
    async with connection.transaction():
        await connection.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
        await connection.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
        if action == "drop":
            await connection.execute(f"DROP TABLE {name}")
    log.info("retention: %s %s", "dropped" if action == "drop" else "detached", name)


async def expire(connection: asyncpg.Connection, today: int, retention_days: int,
                 action: str = "drop") -> list[str]:
    """Drop (or detach) the partitions of the days that ended more than
    `retention_days` before `today` (0: none); returns their names."""
    if retention_days <= 0:
        return []
    if action not in get_args(RetentionAction):
        raise ValueError(f"retention action {action!r}: not one of {get_args(RetentionAction)}")
    cutoff = today - retention_days
    gone = []
    executions = dict((await layout(connection, "executions")).expired(cutoff))
    for day, name in (await layout(connection, "orders")).expired(cutoff):
        if await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE {_OPEN})"):
            log.warning("retention: %s is past %d days and keeps some open orders: kept "
                        "with its executions until they close", name, retention_days)
            continue
        partner = executions.get(day)  # the day's executions, made with its orders
        try:
            if partner is not None:
                await _let_go(connection, "executions", partner, action)
                gone.append(partner)
            await _let_go(connection, "orders", name, action)
            gone.append(name)
        except asyncpg.PostgresError as error:
            log.warning("retention: %s not let go (%s); tried again later", name, error)
    for day, name in (await layout(connection, "trades")).expired(cutoff):
        try:
            await _let_go(connection, "trades", name, action)
            gone.append(name)
        except asyncpg.PostgresError as error:
            log.warning("retention: %s not let go (%s); tried again later", name, error)
    return gone


async def keep(connection: asyncpg.Connection, today: int, retention_days: int,
               action: str = "drop") -> tuple[list[str], list[str]]:
    """ensure() and expire(), by one writer at a time: the partitions created and
    those let go (nothing when another writer is at it)."""
    if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", _KEEP_LOCK):
        return [], []
    try:
        return (await ensure(connection, today),
                await expire(connection, today, retention_days, action))
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _KEEP_LOCK)
