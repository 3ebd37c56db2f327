"""Versioned schema migrations, applied by the program at start, never by hand.

Each file `NNNN_name.sql` in migrations/ runs once, in its own transaction, in order of
its number; `schema_migrations` records what ran. A migration that needs the program's
own rules (venue.db.partitions' day bounds) is `NNNN_name.py`, whose `apply(connection)`
runs in the transaction instead. An advisory lock lets several
processes start at once without applying anything twice.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

_LOCK_KEY = 0x7476_6D69_6772  # "tvmigr": one lock id for every process of a venue
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.(sql|py)$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str | None = None  # a .sql migration's statements
    module: str | None = None  # a .py migration's module

    async def apply(self, connection: asyncpg.Connection) -> None:
        if self.module is not None:
            await importlib.import_module(self.module).apply(connection)
        else:
            await connection.execute(self.sql)


def migrations() -> list[Migration]:
    found = []
    for entry in resources.files("venue.db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match and match.group(2) == "py":
            found.append(Migration(int(match.group(1)), entry.name,
                                   module=f"venue.db.migrations.{entry.name[:-3]}"))
        elif match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {versions}")
    return found


async def migrate(dsn: str, until: int | None = None) -> list[str]:
    """Apply every migration not applied yet (with `until`, only those numbered below
    it: a database as an older version left it); returns the names it applied."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())")
            done = {row["version"] for row in
                    await connection.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for migration in migrations():
                if migration.version in done:
                    continue
                if until is not None and migration.version >= until:
                    break
                async with connection.transaction():
                    await migration.apply(connection)
                    await connection.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version, migration.name)
                applied.append(migration.name)
            return applied
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await connection.close()
