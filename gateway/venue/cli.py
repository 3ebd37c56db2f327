"""`venue`: run a whole venue locally, or one of its parts, and administer it."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import logging.config
import os
import shutil
import signal
import sys
from collections.abc import Callable, Coroutine

from venue import telemetry
from venue.contract.config import Settings


# glibc's mallopt parameter for how many malloc arenas a process may have. By default
# each thread that allocates gets its own, up to 8 a core: the gRPC, database-driver and
# exporter threads of a part that runs for weeks each hold what they once needed, freed
# or not, and the process's memory creeps up by the arena. Two: the event loop's and the
# rest's (the threads mostly wait, and hold the GIL to allocate anyway).
M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def _limit_malloc_arenas() -> None:
    """Before any thread starts. Not glibc (no mallopt): left as it is."""
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):
        pass


def _raise_file_limit() -> None:
    """The soft limit of open files raised to the hard one: systemd, and containerd 2
    for a container, start a process with 1,024, which a gateway's connections pass
    long before its own limits (market sockets, account connections) do."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # a hard limit of infinity, refused: left as is
            pass


def _logging() -> None:
    """JSON lines on stderr, with the trace of the span current (venue.telemetry)."""
    logging.config.dictConfig(telemetry.log_config())


def _require(settings: Settings, *names: str) -> None:
    missing = [n for n in names if getattr(settings, n) is None]
    if missing:
        env = {"redis_url": "REDIS_URL", "database_url": "DATABASE_URL"}
        raise SystemExit("venue: set " + " and ".join(env.get(n, n) for n in missing)
                         + " (`make run` prints its venue's)")


def _until_signalled(main: Callable[[asyncio.Event], Coroutine], uvloop: bool = False) -> None:
    """Run `main(stop)`; SIGTERM or SIGINT sets `stop` so it can finish its batch.
    With `uvloop`, on uvloop's event loop (uvicorn[standard] brings it)."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    if uvloop:
        import uvloop as uv
        uv.run(runner())
    else:
        asyncio.run(runner())


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from venue.local.venue import run
    return run(settings, gateway_port=args.port, tracing=args.tracing)


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from venue.api import http_protocol
    from venue.metrics import MULTIPROC_ENV, multiprocess_directory
    _require(settings, "redis_url", "database_url")
    workers = args.workers or settings.gateway_workers
    # Several workers (processes of their own, which import prometheus_client afresh):
    # each records into files in a directory of this gateway's own, and /metrics adds
    # them up (venue.metrics). One worker is this process, whose prometheus_client is
    # imported already and keeps its metrics in memory: /metrics serves those.
    metrics_dir = multiprocess_directory() if workers > 1 else None
    if metrics_dir:
        os.environ[MULTIPROC_ENV] = metrics_dir
    else:
        os.environ.pop(MULTIPROC_ENV, None)
    try:
        uvicorn.run("venue.api.app:create_app", factory=True,
                    host=args.host or settings.gateway_host,
                    port=args.port or settings.gateway_port, loop="uvloop", http=http_protocol.PROTOCOL,
                    ws=http_protocol.WS_PROTOCOL,
                    workers=workers, log_level="info",
                    access_log=False, log_config=telemetry.log_config())
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def cmd_submitter(args: argparse.Namespace, settings: Settings) -> int:
    from venue.submitter.process import Submitter
    _require(settings, "redis_url")
    _logging()
    return _run_part(telemetry.SUBMITTER, settings, Submitter(settings).run)


def cmd_writer(args: argparse.Namespace, settings: Settings) -> int:
    from venue.writer.process import Writer, collect_rarely
    _require(settings, "redis_url", "database_url")
    _logging()
    collect_rarely()
    os.nice(settings.writer_niceness)  # adds to what it inherited; never raises priority
    # uvloop: asyncpg's COPYs and the Redis round trips cost the writer less CPU on it.
    return _run_part(telemetry.WRITER, settings, Writer(settings).run)


def _run_part(service: str, settings: Settings,
              main: Callable[[asyncio.Event], Coroutine]) -> int:
    """A submitter or writer: traced, its metrics served, run on uvloop until signalled,
    its spans flushed at the end."""
    traced(service)
    _serve_metrics(settings)
    try:
        _until_signalled(main, uvloop=True)
    finally:
        telemetry.shutdown()
    return 0


def _serve_metrics(settings: Settings) -> None:
    if settings.metrics_port:
        from venue.metrics import serve
        serve(settings.metrics_port)


def traced(service: str) -> None:
    if telemetry.setup(service):
        logging.getLogger("venue").info("tracing: %s exports to %s", service,
                                        os.environ[telemetry.ENDPOINT_ENV])


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from venue.db.migrate import migrate
    _require(settings, "database_url")
    applied = asyncio.run(migrate(settings.database_url))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    if settings.bootstrap_api_key:
        import asyncpg

        from venue.accounts import BOOTSTRAP_ACCOUNT, register_key

        async def register() -> bool:
            connection = await asyncpg.connect(settings.database_url)
            try:
                # The Secret's key is the one bootstrap key: one rotated in replaces it.
                return await register_key(connection, BOOTSTRAP_ACCOUNT,
                                          settings.bootstrap_api_key, only=True)
            finally:
                await connection.close()

        added = asyncio.run(register())
        # The key itself is never printed: it is in the Secret it came from.
        print(f"bootstrap api key {'registered' if added else 'already registered'} for "
              f"account {BOOTSTRAP_ACCOUNT}")
    return 0


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    """`venue accounts keys create|list|revoke ACCOUNT`."""
    import asyncpg

    from venue import accounts
    _require(settings, "database_url")

    async def run() -> int:
        connection = await asyncpg.connect(settings.database_url)
        try:
            if args.action == "create":
                key_id, key = await accounts.create_key(connection, args.account, args.name)
                print(f"key {key_id} of {args.account}{f' ({args.name})' if args.name else ''}"
                      f"\napi key (shown once): {key}")
            elif args.action == "list":
                rows = await accounts.list_keys(connection, args.account)
                print(f"{'id':>6}  {'name':20} {'key':12} {'created':20} {'last used':20} revoked")
                for row in rows:
                    print(f"{row['key_id']:>6}  {row['name'][:20]:20} {row['hint']:12} "
                          f"{_when(row['created_at']):20} {_when(row['last_used_at']):20} "
                          f"{_when(row['revoked_at'])}")
            elif not await accounts.revoke_key(connection, args.account, args.key_id):
                raise SystemExit(f"venue: {args.account} has no live key {args.key_id}")
            else:
                print(f"key {args.key_id} of {args.account} revoked: refused by every gateway "
                      f"within {settings.key_cache_ttl_s:g} s")
            return 0
        except accounts.UnknownAccount as error:
            raise SystemExit(f"venue: {error}") from None
        finally:
            await connection.close()

    return asyncio.run(run())


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def cmd_accounts_create(args: argparse.Namespace, settings: Settings) -> int:
    import asyncpg

    from venue.accounts import create_account
    _require(settings, "database_url")

    async def create() -> tuple[int, str]:
        connection = await asyncpg.connect(settings.database_url)
        try:
            return await create_account(connection, args.name)
        finally:
            await connection.close()

    try:
        account_id, key = asyncio.run(create())
    except asyncpg.UniqueViolationError:
        raise SystemExit(f"venue: account {args.name!r} exists already") from None
    except ValueError as error:
        raise SystemExit(f"venue: {error}") from None
    print(f"account {args.name} (id {account_id})\napi key (shown once): {key}")
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """`venue bench WHAT ...`: each benchmark is venue.bench.WHAT with its own flags."""
    import importlib
    module = args.what.replace("-", "_")
    try:
        bench = importlib.import_module(f"venue.bench.{module}")
    except ModuleNotFoundError:
        raise SystemExit(f"venue bench: no benchmark {args.what!r}") from None
    return bench.main(args.args)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="venue", description="tradingvenue: a whole venue locally, or one of its parts. "
        "Configuration comes from the environment: REDIS_URL, DATABASE_URL, VENUE_CONFIG "
        "(venue JSON), VENUE_ENGINES (engine address per partition), VENUE_DATA_DIR.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="start a whole venue on this machine (make run)",
        description="Start a whole venue on this machine: Redis and Postgres of its own "
        "unless REDIS_URL and DATABASE_URL name them, the engine, the writer, a submitter and "
        "the gateway. Its data (Redis's, Postgres's, the engine's journal, the parts' logs, "
        "the API keys) is kept in VENUE_DATA_DIR (default ./.venue) for the next start.")
    up.add_argument("--port", type=int, help="gateway port (default 8000, or a free one)")
    up.add_argument("--tracing", action="store_true",
                    help="start a local Jaeger beside the venue, export every part's spans "
                         "to it (OTEL_TRACES_SAMPLER_ARG, default 0.01) and print its UI URL")
    up.set_defaults(run=cmd_up)

    gateway = commands.add_parser("gateway", help="run the order gateway (HTTP API)")
    gateway.add_argument("--host")
    gateway.add_argument("--port", type=int)
    gateway.add_argument("--workers", type=int, help="processes (default VENUE_GATEWAY_WORKERS, 1)")
    gateway.set_defaults(run=cmd_gateway)

    commands.add_parser("submitter", help="run a batch submitter").set_defaults(
        run=cmd_submitter)
    commands.add_parser("writer", help="run the database writer").set_defaults(run=cmd_writer)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(
        run=cmd_migrate)

    bench = commands.add_parser(
        "bench", help="benchmarks that print JSON (engine, engine-grpc, e2e, market, writer, "
        "operator, soak)",
        description="Run `venue bench WHAT --help` for the flags of one benchmark.")
    bench.add_argument("what", help="engine | engine-grpc | e2e | market | writer | "
                       "operator | soak")
    bench.add_argument("args", nargs=argparse.REMAINDER)
    bench.set_defaults(run=cmd_bench)

    accounts = commands.add_parser("accounts", help="manage accounts and API keys")
    account_commands = accounts.add_subparsers(dest="accounts_command", required=True,
                                               metavar="ACTION")
    create = account_commands.add_parser("create", help="create an account and its API key")
    create.add_argument("name")
    create.set_defaults(run=cmd_accounts_create)
    keys = account_commands.add_parser("keys", help="an account's API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    key_create = key_commands.add_parser("create", help="issue a new key (shown once)")
    key_create.add_argument("account")
    key_create.add_argument("--name", default="", help="what the key is for")
    key_create.set_defaults(run=cmd_keys, action="create")
    key_list = key_commands.add_parser("list", help="the account's keys (never the keys)")
    key_list.add_argument("account")
    key_list.set_defaults(run=cmd_keys, action="list")
    key_revoke = key_commands.add_parser(
        "revoke", help="revoke a key: every gateway refuses it within the key cache period")
    key_revoke.add_argument("account")
    key_revoke.add_argument("key_id", type=int)
    key_revoke.set_defaults(run=cmd_keys, action="revoke")
    return top


def main(argv: list[str] | None = None) -> int:
    _limit_malloc_arenas()
    _raise_file_limit()
    args = parser().parse_args(argv)
    return args.run(args, Settings())


if __name__ == "__main__":
    sys.exit(main())
