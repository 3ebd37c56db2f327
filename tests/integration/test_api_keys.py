"""API keys as an operator of the venue manages them: named keys with a hint and a
last use, a revoked key refused by every gateway replica within the key cache period, a
rotated bootstrap key that replaces the last, and no key ever in a log line."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from contextlib import AsyncExitStack

import asyncpg
import httpx

from venue import accounts
from venue.api.app import create_app
from venue.contract.config import Settings

TTL_S = 1.0


async def _replica(stack: AsyncExitStack, redis_url: str, database_url: str) -> httpx.AsyncClient:
    app = create_app(Settings(redis_url=redis_url, database_url=database_url,
                              key_cache_ttl_s=TTL_S))
    await stack.enter_async_context(app.router.lifespan_context(app))
    return await stack.enter_async_context(httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"))


async def test_a_revoked_key_is_refused_by_every_replica_within_the_cache_period(
        redis_url, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    db = await asyncpg.connect(database_url)
    async with AsyncExitStack() as stack:
        replicas = [await _replica(stack, redis_url, database_url) for _ in range(2)]
        await accounts.create_account(db, "dana")
        key_id, key = await accounts.create_key(db, "dana", "market maker 1")
        headers = {"Authorization": f"Bearer {key}"}
        for replica in replicas:  # both now hold the key in their caches
            assert (await replica.get("/v1/orders", headers=headers)).status_code == 200
        [first, second] = await accounts.list_keys(db, "dana")
        assert second["key_id"] == key_id and second["name"] == "market maker 1"
        assert key.startswith(second["hint"][:-3]) and len(second["hint"]) < 12
        assert second["last_used_at"] is not None and second["revoked_at"] is None
        assert first["last_used_at"] is None  # the account's first key, never used

        assert await accounts.revoke_key(db, "dana", key_id)
        assert not await accounts.revoke_key(db, "dana", key_id)  # once
        revoked = time.monotonic()
        refused = [None, None]
        while None in refused and time.monotonic() - revoked < TTL_S + 5:
            for index, replica in enumerate(replicas):
                if refused[index] is None and (await replica.get(
                        "/v1/orders", headers=headers)).status_code == 401:
                    refused[index] = time.monotonic() - revoked
            await asyncio.sleep(0.05)
        assert None not in refused and max(refused) <= TTL_S + 0.5, refused
    await db.close()
    assert not [r for r in caplog.records if key in r.getMessage()]  # never logged


async def test_a_rotated_bootstrap_key_replaces_the_last(database_url):
    db = await asyncpg.connect(database_url)
    try:
        old, new = accounts.new_key(), accounts.new_key()
        assert await accounts.register_key(db, accounts.BOOTSTRAP_ACCOUNT, old, only=True)
        assert not await accounts.register_key(db, accounts.BOOTSTRAP_ACCOUNT, old, only=True)
        assert await accounts.account_for_key(db, old) is not None
        assert await accounts.register_key(db, accounts.BOOTSTRAP_ACCOUNT, new, only=True)
        assert await accounts.account_for_key(db, old) is None
        assert await accounts.account_for_key(db, new) is not None
    finally:
        await db.close()


async def test_the_cli_lists_and_revokes_keys_and_never_prints_one_again(database_url):
    env = {**os.environ, "VENUE_DATABASE_URL": database_url, "DATABASE_URL": database_url}

    def venue(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "venue.cli", "accounts", *args],
                              env=env, capture_output=True, text=True, timeout=60)

    created = venue("create", "erin")
    assert created.returncode == 0, created.stderr
    made = venue("keys", "create", "erin", "--name", "backoffice")
    key = made.stdout.split("(shown once): ")[1].strip()
    listed = venue("keys", "list", "erin")
    assert "backoffice" in listed.stdout and key[:7] in listed.stdout
    assert key not in listed.stdout
    key_id = made.stdout.split()[1]
    assert venue("keys", "revoke", "erin", key_id).returncode == 0
    again = venue("keys", "revoke", "erin", key_id)
    assert again.returncode != 0 and "no live key" in again.stderr
    unknown = venue("keys", "list", "nobody")
    assert unknown.returncode != 0 and "no account 'nobody'" in unknown.stderr
    assert unknown.stdout == ""  # not a listing's header, as if it were one of no keys
    for bad in ("", "bad name!", ".x", "x" * 65):
        refused = venue("create", bad)
        assert refused.returncode != 0 and "account name" in refused.stderr, (bad, refused)
    assert "erin" in venue("create", "erin").stderr  # exists already
