"""Redis and PostgreSQL run privately in a data directory, for `venue up` and tests.

Both keep their data where they are told, so a second start resumes the first one's
state: Redis from its append-only file, Postgres from its cluster directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

from venue.db import LOCAL_MAX_WAL_SIZE_MB, LOCAL_WAL_ARGS, write_heavy_args
from venue.local.process import (Child, Service, free_port, port_open, wait_until,
                                 with_parent_death_signal)
from venue.local.writeback import WritebackPacer
from venue.contract.keys import REDIS_PERSISTENCE_ARGS


def _find_binary(name: str, extra_globs: tuple[str, ...] = ()) -> str:
    found = shutil.which(name)
    if found:
        return found
    for pattern in extra_globs:
        candidates = sorted(glob.glob(pattern), reverse=True)
        if candidates:
            return candidates[0]
    raise FileNotFoundError(f"{name} not found on PATH; `make deps` installs it")


class RedisServer(Service):
    """A redis-server with append-only persistence (fsync every second) in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None, appendfsync: str = "everysec"):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            _find_binary("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()), *REDIS_PERSISTENCE_ARGS,
            "--appendfsync", self.appendfsync, "--daemonize", "no",
            "--protected-mode", "yes", "--logfile", "",
        ]
        self.child = Child("redis", argv, self.data_dir / "redis.log").start()
        wait_until(lambda: port_open(self.port), "redis-server", timeout,
                   self.child.process, self.child.log)
        return self



class PostgresServer(Service):
    """A PostgreSQL cluster in `data_dir`, made by initdb on first start.

    Postgres refuses to run as root; when we are root it runs as the `postgres` user
    (Debian's package creates it) and owns its directory.
    """

    def __init__(self, data_dir: Path, port: int | None = None, database: str = "venue",
                 user: str = "venue", settings: dict[str, str] | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.settings = dict(settings or {})  # further `-c` settings, after ours
        self.port = port or free_port()
        self.database = database
        self.user = user
        self.os_user = "postgres" if os.geteuid() == 0 else None
        self.child: Child | None = None
        self.pacer: WritebackPacer | None = None  # the database's files, once it is made

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "run"

    def url(self, database: str | None = None) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database or self.database}"

    def _bin(self, name: str) -> str:
        return _find_binary(name, ("/usr/lib/postgresql/*/bin/" + name,))

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(with_parent_death_signal(argv, user=self.os_user),
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stdout}{result.stderr}")

    def _own(self, path: Path) -> None:
        if self.os_user is not None:
            account = pwd.getpwnam(self.os_user)
            os.chown(path, account.pw_uid, account.pw_gid)

    def start(self, timeout: float = 60.0) -> PostgresServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        for path in (self.data_dir, self.socket_dir):
            self._own(path)
        if self.os_user is not None:
            # The postgres user must be able to reach its directory from /.
            for parent in self.data_dir.parents:
                if parent.stat().st_mode & 0o001 == 0:
                    raise PermissionError(
                        f"{parent} is not traversable by the postgres user; "
                        "choose a data directory under a world-searchable path")
        if not (self.pgdata / "PG_VERSION").exists():
            self._run([self._bin("initdb"), "-D", str(self.pgdata), "-U", self.user,
                       "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
        argv = [
            self._bin("postgres"), "-D", str(self.pgdata), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}",
            "-c", "max_connections=200", "-c", "shared_buffers=1GB",
            "-c", "synchronous_commit=on", "-c", "fsync=on",
        ]
        argv += write_heavy_args(LOCAL_MAX_WAL_SIZE_MB) + LOCAL_WAL_ARGS
        for name, value in self.settings.items():
            argv += ["-c", f"{name}={value}"]
        log = self.data_dir / "postgres.log"
        if not log.exists():
            log.touch()
        self._own(log)
        self.child = Child("postgres", argv, log, user=self.os_user).start()
        wait_until(self._accepting, "postgres", timeout, self.child.process, log)
        oid = self._create_database(self.database)
        if self.pacer is None:
            self.pacer = WritebackPacer(self.pgdata / "base" / oid)
        self.pacer.start()
        return self

    def _accepting(self) -> bool:
        if not port_open(self.port):
            return False
        result = subprocess.run(
            [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user],
            capture_output=True)
        return result.returncode == 0

    def _create_database(self, name: str) -> str:
        """Makes the database unless it is there; its oid, which names its directory."""
        def oid() -> str:
            return subprocess.run(
                ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d",
                 "postgres", "-tAc", f"SELECT oid FROM pg_database WHERE datname = '{name}'"],
                capture_output=True, text=True, check=True).stdout.strip()

        if not (found := oid()):
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d",
                 "postgres", "-c", f'CREATE DATABASE "{name}"'],
                capture_output=True, check=True)
            found = oid()
        return found

    def stop(self) -> None:
        """A fast shutdown: open sessions are ended, committed data is kept."""
        if self.pacer is not None:
            self.pacer.stop()
        if self.child is not None and self.child.alive():
            # SIGINT to the postmaster alone is postgres' fast shutdown.
            self.child.stop(timeout=30, sig=signal.SIGINT, whole_group=False)
