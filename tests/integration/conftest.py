"""Venues for integration tests, on the test's own Redis and Postgres.

`gateway`: the gateway application in this process (httpx over ASGI) with two accounts.
(`local_venue`, the processes `venue up` starts, is tests/conftest.py's.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from venue.accounts import create_account
from venue.api.app import create_app
from venue.contract.config import Settings, VenueConfig
from venue.enginepb import engine_pb2
from venue.contract.entries import split_frames
from venue.contract.keys import Keys

VENUE = VenueConfig()
KEYS = Keys(VENUE.name)


@dataclass
class Gateway:
    app: Any
    client: httpx.AsyncClient
    redis: Redis
    db: asyncpg.Connection
    account_id: int
    key: str
    other_account_id: int
    other_key: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def stream_entries(self) -> list[tuple[int, bytes, dict[bytes, bytes]]]:
        """Every order stream entry: (shard, stream id, fields)."""
        entries = []
        for shard in range(VENUE.shards):
            for stream_id, fields in await self.redis.xrange(KEYS.orders(shard)):
                entries.append((shard, stream_id, fields))
        return entries

    async def commands(self, shard: int) -> list[engine_pb2.Command]:
        """Every command queued on `shard`, in stream order."""
        return [engine_pb2.Command.FromString(command)
                for _, fields in await self.redis.xrange(KEYS.orders(shard))
                for command in split_frames(fields[b"cmds"])]

    async def stream_lengths(self) -> list[int]:
        return [await self.redis.xlen(KEYS.orders(shard)) for shard in range(VENUE.shards)]


@pytest.fixture
def tiny_lag_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """A shard lag limit of 2 entries, for gateways made after this fixture."""
    monkeypatch.setenv("VENUE_SHARD_LAG_LIMIT", "2")
    return 2


@pytest.fixture
def tiny_unpersisted_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """At most 2 orders awaiting Postgres, for gateways made after this fixture."""
    monkeypatch.setenv("VENUE_UNPERSISTED_LIMIT", "2")
    return 2


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the test Redis."""
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def gateway(redis_url: str, database_url: str) -> AsyncIterator[Gateway]:
    db = await asyncpg.connect(database_url)
    redis = Redis.from_url(redis_url)
    account_id, key = await create_account(db, "alice")
    other_account_id, other_key = await create_account(db, "bob")
    app = create_app(Settings(redis_url=redis_url, database_url=database_url))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                yield Gateway(app, client, redis, db, account_id, key, other_account_id,
                              other_key)
    finally:
        await redis.aclose()
        await db.close()


@pytest.fixture
def persisted_through():
    """persisted_through(connection, reaches, writer=None): how far Postgres holds
    partition 0, once it reaches `reaches`, 30 s passed or the `writer` task ended."""
    return _persisted_through


async def _persisted_through(connection: asyncpg.Connection, reaches: int,
                             writer: asyncio.Task | None = None, timeout: float = 30) -> int:
    """How far Postgres holds partition 0, once it reaches `reaches`, `timeout` passed or
    the `writer` task ended."""
    deadline = time.monotonic() + timeout
    through = 0
    while time.monotonic() < deadline and through < reaches and not (writer and writer.done()):
        await asyncio.sleep(0.1)
        through = await connection.fetchval(
            "SELECT persisted_through FROM partition_progress WHERE partition = 0") or 0
    return through
