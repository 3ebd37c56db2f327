"""`venue migrate` registers the operator's bootstrap API key (VENUE_BOOTSTRAP_API_KEY,
from the venue's <venue>-api-key Secret), so a user of a cluster can trade with the key
the Secret holds. The real CLI against a real Postgres."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from venue.accounts import BOOTSTRAP_ACCOUNT, account_for_key, new_key


def migrate(database_url: str, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENUE_")}
    env["VENUE_DATABASE_URL"] = database_url
    if key is not None:
        env["VENUE_BOOTSTRAP_API_KEY"] = key
    return subprocess.run([sys.executable, "-m", "venue.cli", "migrate"], env=env,
                          capture_output=True, text=True, timeout=60)


def lookup(database_url: str, query: str, *args):
    async def run():
        connection = await asyncpg.connect(database_url)
        try:
            return await connection.fetch(query, *args)
        finally:
            await connection.close()
    return asyncio.run(run())


def test_migrate_registers_the_bootstrap_key_once_and_never_prints_it(database_url):
    key = new_key()
    first = migrate(database_url, key)
    assert first.returncode == 0, first.stderr
    assert f"bootstrap api key registered for account {BOOTSTRAP_ACCOUNT}" in first.stdout
    assert key not in first.stdout + first.stderr
    # Every gateway and writer pod runs migrate before it starts: again is a no-op.
    again = migrate(database_url, key)
    assert again.returncode == 0, again.stderr
    assert "already registered" in again.stdout
    rows = lookup(database_url, "SELECT a.name, count(*) FROM api_keys k JOIN accounts a "
                                "USING (account_id) GROUP BY a.name")
    assert [(r[0], r[1]) for r in rows] == [(BOOTSTRAP_ACCOUNT, 1)]

    async def account():
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
        try:
            return await account_for_key(pool, key)
        finally:
            await pool.close()
    assert asyncio.run(account()) is not None


def test_a_revoked_bootstrap_key_stays_revoked_after_migrate(database_url):
    key = new_key()
    assert migrate(database_url, key).returncode == 0
    lookup(database_url, "UPDATE api_keys SET revoked_at = now()")
    assert migrate(database_url, key).returncode == 0
    rows = lookup(database_url, "SELECT revoked_at IS NOT NULL FROM api_keys")
    assert [r[0] for r in rows] == [True]


def test_migrate_without_a_bootstrap_key_registers_nothing(database_url):
    done = migrate(database_url, None)
    assert done.returncode == 0, done.stderr
    assert "bootstrap" not in done.stdout
    assert lookup(database_url, "SELECT count(*) FROM api_keys")[0][0] == 0
