"""Real parts for tests: Redis, PostgreSQL and the engine on free ports in temp dirs.

Postgres is one server per test session with a migrated template database; every test
gets its own database cloned from it. Redis and the engine are started per test, and so
is `local_venue` (every part as `venue up` starts it) for the tests that need a whole one.
"""

from __future__ import annotations

import asyncio
import faulthandler
import itertools
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest
from _pytest.faulthandler import fault_handler_stderr_fd_key

from venue.contract.config import Settings, VenueConfig
from venue.db.migrate import migrate
from venue.local.engine import EngineProcess, engine_binary
from venue.local.process import free_port
from venue.local.servers import PostgresServer, RedisServer
from venue.local.venue import LocalVenue

_TEMPLATE = "venue_template"
_database_numbers = itertools.count(1)

# Behind pytest-timeout: its SIGALRM cannot stop a test stuck inside C (a deadlock in
# fork once held CI until it was killed at 90 minutes). This long past a test's limit,
# faulthandler's own thread prints every thread's stack and ends the run.
BACKSTOP_S = 120


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    marker = item.get_closest_marker("timeout")
    limit = item.config.getini("timeout")
    if marker is not None:
        limit = marker.kwargs.get("timeout", marker.args[0] if marker.args else limit)
    if not float(limit or 0) > 0:
        return (yield)
    faulthandler.dump_traceback_later(float(limit) + BACKSTOP_S, exit=True,
                                      file=item.config.stash[fault_handler_stderr_fd_key])
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="session")
def postgres_server():
    # Not under pytest's tmp dir: that is private to root, and when we are root the
    # server runs as the postgres user, who must be able to reach its directory.
    data_dir = Path(tempfile.mkdtemp(prefix="venue-test-pg-"))
    data_dir.chmod(0o755)
    # fsync off: what a test kills is a process, never the machine, and the kernel keeps
    # what a killed Postgres wrote (commits still wait for their WAL write). With it on,
    # the session's few hundred databases cost half a minute of flushing at the end.
    server = PostgresServer(data_dir, database=_TEMPLATE, settings={"fsync": "off"})
    try:
        server.start()
        asyncio.run(migrate(server.url()))
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> str:
    """A fresh, migrated database of its own for this test."""
    name = f"test_{next(_database_numbers)}"

    async def create() -> None:
        connection = await asyncpg.connect(postgres_server.url("postgres"))
        try:
            await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_TEMPLATE}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return postgres_server.url(name)


@pytest.fixture
def redis_server(tmp_path: Path):
    server = RedisServer(tmp_path / "redis")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def venue_config() -> VenueConfig:
    return VenueConfig()


@pytest.fixture(scope="session")
def built_engine() -> Path:
    """The engine binary; a test that needs it fails (not skips) when it is not built."""
    return engine_binary()


@pytest.fixture
def engine(built_engine: Path, venue_config: VenueConfig, tmp_path: Path):
    process = EngineProcess(venue_config, partition=0, data_dir=tmp_path / "engine-0")
    try:
        yield process.start()
    finally:
        process.stop()


@pytest.fixture
def local_venue(redis_url: str, database_url: str, built_engine: Path, tmp_path: Path):
    """Engine, gateway, submitter and writer processes, started the way `venue up`
    starts them, with the local accounts alice and bob (`.keys`)."""
    settings = Settings(redis_url=redis_url, database_url=database_url)
    venue = LocalVenue(settings, VenueConfig(), tmp_path / "venue", gateway_port=free_port(),
                       say=lambda _: None)
    try:
        yield venue.start()
    finally:
        venue.stop()


@pytest.fixture
def jaeger(tmp_path: Path):
    """A Jaeger with in-memory storage on free ports (venue.local.jaeger)."""
    from venue.local.jaeger import JaegerServer
    server = JaegerServer(tmp_path / "jaeger").start()
    try:
        yield server
    finally:
        server.stop()
