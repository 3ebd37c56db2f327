"""`venue up`: a whole venue on one machine, each part its own process.

Redis and Postgres run privately under the data directory unless REDIS_URL and
DATABASE_URL name servers to use; then one engine per partition, the gateway, one
submitter and one writer. A part that dies is started again; Ctrl-C or SIGTERM stops
every part in order (front to back) and keeps the data for the next start.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg

from venue.accounts import create_account, issue_key
from venue.contract.config import Settings, VenueConfig
from venue.db.migrate import migrate
from venue.local.engine import EngineProcess
from venue.local.process import (Child, Restarts, Service, free_port, kept_port, log_tail,
                                 port_open, rotate_log, wait_until)
from venue.local.servers import PostgresServer, RedisServer

LOCAL_ACCOUNTS = ("alice", "bob")


class LocalVenue:
    def __init__(self, settings: Settings, venue: VenueConfig, data_dir: Path,
                 gateway_port: int | None = None, say=print, submitters: int = 1,
                 env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.venue = venue
        self.data_dir = data_dir.resolve()
        self.gateway_port = gateway_port or settings.gateway_port
        self.say = say
        self.submitters = submitters
        self.env = env or {}  # the parts' environment beyond this process's (VENUE_*)
        self.redis: RedisServer | None = None
        self.postgres: PostgresServer | None = None
        self.engines: list[EngineProcess] = []
        self.children: dict[str, Child] = {}
        # Servers started beside the venue (`venue up --tracing`'s Jaeger): their logs
        # are rotated with the parts'; they are started and stopped by whoever made them.
        self.beside: list[Service] = []
        self.redis_url = settings.redis_url
        self.database_url = settings.database_url
        self.keys: dict[str, str] = {}
        # Where each submitter and the writer serve /metrics (the gateway: gateway_url).
        self.metrics_ports: dict[str, int] = {}

    @property
    def gateway_url(self) -> str:
        return f"http://{self.settings.gateway_host}:{self.gateway_port}"

    def start(self) -> LocalVenue:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = self.data_dir / "ports.json"  # the same URLs at every start, when free
        if self.redis_url is None:
            self.redis = RedisServer(self.data_dir / "redis", port=kept_port(ports, "redis"),
                                     appendfsync="always").start()
            self.redis_url = self.redis.url
        if self.database_url is None:
            self.postgres = PostgresServer(self.data_dir / "postgres",
                                           port=kept_port(ports, "postgres")).start()
            self.database_url = self.postgres.url()
        asyncio.run(self._prepare_database())
        config_path = self.data_dir / "venue.json"
        config_path.write_text(self.venue.model_dump_json(indent=2))
        for partition in range(self.venue.partitions):
            self.engines.append(
                EngineProcess(self.venue, partition, self.data_dir / f"engine-{partition}").start())
        env = dict(os.environ, **self.env, REDIS_URL=self.redis_url,
                   DATABASE_URL=self.database_url,
                   VENUE_CONFIG=str(config_path),
                   VENUE_ENGINES=",".join(e.address for e in self.engines),
                   VENUE_GATEWAY_PORT=str(self.gateway_port))
        logs = self.data_dir / "logs"
        parts = ["writer", *(f"submitter-{i}" for i in range(self.submitters)), "gateway"]
        for part in parts:
            argv = [sys.executable, "-m", "venue.cli", part.split("-")[0]]
            own = {"VENUE_INSTANCE": part}
            if part != "gateway":  # the gateway serves /metrics on its own port
                self.metrics_ports[part] = free_port()
                own["VENUE_METRICS_PORT"] = str(self.metrics_ports[part])
            self.children[part] = Child(part, argv, logs / f"{part}.log",
                                        env=env | own).start()
        gateway = self.children["gateway"]
        wait_until(lambda: _healthy(self.gateway_url), "gateway", 60, gateway.process,
                   gateway.log)
        return self

    async def _prepare_database(self) -> None:
        applied = await migrate(self.database_url)
        if applied:
            self.say(f"database: applied {', '.join(applied)}")
        keys_file = self.data_dir / "api-keys.json"
        known = json.loads(keys_file.read_text()) if keys_file.exists() else {}
        connection = await asyncpg.connect(self.database_url)
        try:
            for name in LOCAL_ACCOUNTS:
                account_id = await connection.fetchval(
                    "SELECT account_id FROM accounts WHERE name = $1", name)
                if account_id is None:
                    _, known[name] = await create_account(connection, name)
                elif name not in known:  # the database outlived the key file
                    known[name] = await issue_key(connection, account_id)
        finally:
            await connection.close()
        keys_file.write_text(json.dumps(known, indent=2))
        keys_file.chmod(0o600)
        self.keys = known

    def part_pids(self) -> dict[str, int]:
        """The process of each running part, by name (its workers and backends are
        under it)."""
        parts = {name: child.pid for name, child in self.children.items() if child.alive()}
        parts |= {e.child.name: e.child.pid for e in self.engines if e.child and e.child.alive()}
        for server in (self.redis, self.postgres):
            if server is not None and server.child is not None and server.child.alive():
                parts[server.child.name] = server.child.pid
        return parts

    def rotate_logs(self) -> None:
        """Each part's log kept under settings.log_file_bytes (rotate_log)."""
        servers = (self.redis, self.postgres, *self.engines, *self.beside)
        children = [*self.children.values(), *(s.child for s in servers if s is not None)]
        for child in children:
            if child is None:
                continue
            try:
                rotate_log(child.log, self.settings.log_file_bytes, self.settings.log_files)
            except OSError as error:  # (a full disk): the venue goes on; said each time
                self.say(f"could not rotate {child.log}: {error}")

    def supervise(self, stop: list[bool]) -> None:
        """Start again any part that died, until asked to stop: at once the first time,
        later and later while it keeps dying (Restarts), saying each time which part,
        how it ended and the last lines of its log. Keeps the parts' logs rotated."""
        restarts = {name: Restarts() for name in [*self.children, *(
            e.child.name for e in self.engines)]}
        while not stop[0]:
            now = time.monotonic()
            parts = [(name, child, child.start) for name, child in self.children.items()]
            parts += [(e.child.name, e.child, e.start) for e in self.engines]
            for name, child, start in parts:
                if stop[0] or child.alive():
                    continue
                restart = restarts[name]
                if restart.due is None:
                    delay = restart.died(now)
                    self.say(f"{name} exited with {child.process.returncode} "
                             f"({restart.failures} time(s) in a row); starting it again "
                             + (f"in {delay:.0f} s" if delay else "now") + log_tail(child.log, 10))
                if now >= restart.due:
                    restart.starting(now)
                    try:
                        start()
                    except (RuntimeError, TimeoutError) as error:  # died again, starting
                        self.say(f"{name} did not start: {error}")
            self.rotate_logs()
            time.sleep(0.5)

    def stop(self) -> None:
        # Front to back: nothing new comes in while the queue drains into the engine.
        for name in sorted(self.children, key=lambda n: ("gateway", "submitter", "writer")
                           .index(n.split("-")[0])):
            self.children[name].stop()
        for engine in self.engines:
            engine.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def run(settings: Settings, gateway_port: int | None = None, tracing: bool = False) -> int:
    venue = settings.venue()
    data_dir = settings.data_dir
    port = gateway_port or settings.gateway_port
    if port_open(port, settings.gateway_host):
        port = free_port()
    jaeger = None
    if tracing:
        from venue import telemetry
        from venue.local.jaeger import JaegerServer
        print("starting jaeger (built from Go modules the first time) ...", flush=True)
        jaeger = JaegerServer(data_dir / "jaeger").start()
        # Every part is started with this environment: they export to it.
        os.environ[telemetry.ENDPOINT_ENV] = jaeger.otlp_endpoint
    local = LocalVenue(settings, venue, data_dir, gateway_port=port)
    if jaeger is not None:
        local.beside.append(jaeger)
    stop = [False]

    def ask_to_stop(signum, _frame) -> None:
        stop[0] = True

    signal.signal(signal.SIGINT, ask_to_stop)
    signal.signal(signal.SIGTERM, ask_to_stop)
    try:
        local.start()
        symbol = venue.instruments[0]
        price = symbol.price_text(symbol.min_price_ticks * 100 if symbol.min_price_ticks else 100)
        print(f"venue {venue.name} is up: {local.gateway_url}  (docs: {local.gateway_url}/docs)")
        print(f"  the venue page: {local.gateway_url}/   market data: "
              f"{local.gateway_url.replace('http', 'ws', 1)}/v1/market")
        print(f"  redis {local.redis_url}   postgres {local.database_url}")
        print(f"  logs in {data_dir / 'logs'}; API keys in {data_dir / 'api-keys.json'}")
        for name, key in local.keys.items():
            print(f"  account {name}: key {key}")
        print("  try: curl -s -X POST {url}/v1/orders -H 'Authorization: Bearer {key}' "
              "-H 'Content-Type: application/json' -d '{{\"symbol\": \"{sym}\", \"side\": "
              "\"buy\", \"price\": \"{px}\", \"quantity\": \"{qty}\"}}'".format(
                  url=local.gateway_url, key=local.keys.get("alice", "<key>"), sym=symbol.symbol,
                  px=price, qty=symbol.lot_size))
        if jaeger is not None:
            print(f"  traces: {jaeger.ui_url} (Jaeger; a request's `traceparent` with flags 01 "
                  "is always traced)")
        print("Ctrl-C stops the venue; data stays for the next start.", flush=True)
        local.supervise(stop)
    finally:
        print("stopping venue ...", flush=True)
        local.stop()
        if jaeger is not None:
            jaeger.stop()
        print("stopped.", flush=True)
    return 0
