"""`venue bench e2e`: the whole order path under load, and whether anything was lost.

Starts a local venue (or targets --url), drives it from separate load processes (batch
requests, one order per request, or order-entry WebSockets) for
--duration seconds, waits until Postgres holds every accepted order, and prints JSON:
what was accepted, what was persisted within the window and after, what was lost or
doubled, ack latencies, and with --baseline the requests/s of a bare FastAPI endpoint
served the same way in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from redis.asyncio import Redis

from venue.accounts import create_account
from venue.bench.audit import audit_orders
from venue.bench.cpu import parts_cpu_seconds
from venue.bench.load import LoadResult, LoadSpec, run
from venue.contract.config import Settings, VenueConfig
from venue.contract.dead_letters import dead_letter_count
from venue.contract.instruments import Instrument
from venue.local.process import Child, free_port, port_open, wait_until
from venue.local.venue import LocalVenue
from venue.contract.keys import Keys


# Where each mode sends its orders, and over how many connections per load process.
# Single orders: enough connections that the venue, whose answer waits for a Redis
# append, is busy, as the bare endpoint is; with 32 a fifth of the CPU idled.
_PATHS = {"batch": "/v1/orders/batch", "single": "/v1/orders", "ws": "/v1/ws"}
_CONNECTIONS = {"batch": 4, "single": 128, "ws": 32}


async def _bench_accounts(database_url: str, count: int) -> tuple[str, ...]:
    """Keys of `count` more accounts: in ws mode each socket trades for its own account,
    so each execution report goes to one socket (every socket of an account gets all of
    the account's reports)."""
    connection = await asyncpg.connect(database_url)
    try:
        return tuple([(await create_account(connection, f"bench-{i}"))[1]
                      for i in range(max(0, count))])
    finally:
        await connection.close()


async def _dead_letters(redis_url: str | None, venue: VenueConfig) -> int | None:
    if redis_url is None:
        return None
    redis = Redis.from_url(redis_url)
    try:
        return await dead_letter_count(redis, Keys(venue.name))
    finally:
        await redis.aclose()


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def _instruments_of(url: str, key: str) -> list[Instrument]:
    """The running venue's instruments, as its API lists them (GET /v1/instruments)."""
    answer = httpx.get(f"{url}/v1/instruments", headers={"Authorization": f"Bearer {key}"},
                       timeout=10)
    answer.raise_for_status()
    return [Instrument(symbol=view["symbol"], id=number, tick_size=view["tickSize"],
                       lot_size=view["lotSize"], min_price=view["minPrice"],
                       max_price=view["maxPrice"], max_quantity=view["maxQuantity"])
            for number, view in enumerate(answer.json(), start=1)]


def _drive(specs: list[LoadSpec]) -> list[LoadResult]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(specs)) as pool:
        return pool.map(run, specs)


async def _count_orders(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval("SELECT count(*) FROM orders")
    finally:
        await connection.close()


def _baseline(args: argparse.Namespace, specs: list[LoadSpec]) -> float:
    """Requests/s of a do-nothing FastAPI endpoint under the single-order load."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="venue-bare-")) / "bare.log"
    child = Child("bare", [sys.executable, "-m", "uvicorn", "venue.bench.bare:app",
                           "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
                           "--http", "httptools", "--no-access-log", "--workers",
                           str(args.gateway_workers)], log).start()
    try:
        wait_until(lambda: port_open(port), "bare endpoint", 30, child.process, log)
        duration = min(args.duration, 20.0)
        bare = [LoadSpec(url=f"http://127.0.0.1:{port}", path="/bare", keys=s.keys,
                         instruments=s.instruments, duration_s=duration,
                         connections=s.connections, batch_size=0, seed=s.seed, tag=s.tag)
                for s in specs]
        return sum(r.requests for r in _drive(bare)) / duration
    finally:
        child.stop()
        shutil.rmtree(log.parent, ignore_errors=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="venue bench e2e", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=tuple(_PATHS), default="batch")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--url", help="a running gateway, a cluster's say (needs two keys, "
                        "of two accounts so that orders cross, and --database-url)")
    parser.add_argument("--key", action="append", default=[],
                        help="an API key to send orders with (again for each key)")
    parser.add_argument("--keys", help="comma-separated API keys to send orders with")
    parser.add_argument("--database-url", help="the venue's Postgres, to audit")
    parser.add_argument("--baseline", action="store_true",
                        help="also measure a bare FastAPI endpoint served the same way")
    parser.add_argument("--batch-size", type=int, default=500, help="orders per batch request")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="orders/s to send at most, over every process (batch and "
                        "single modes; default: as fast as the venue answers)")
    parser.add_argument("--processes", type=int, default=1, help="load processes")
    parser.add_argument("--connections", type=int, default=None,
                        help="connections per load process (default: 4 batch, 128 single, 32 ws)")
    parser.add_argument("--gateway-workers", type=int, default=1)
    parser.add_argument("--submitters", type=int, default=1)
    parser.add_argument("--settle", type=float, default=300.0,
                        help="most seconds to wait for Postgres to hold every accepted order")
    args = parser.parse_args(argv)
    # SIGTERM (a timeout, a CI runner) unwinds like Ctrl-C, so the venue is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    say = (lambda _: None) if args.json else (lambda text: print(text, file=sys.stderr))

    venue = None
    data_dir = None
    if args.url:
        keys = tuple(args.key) + tuple(k for k in (args.keys or "").split(",") if k)
        if not (keys and args.database_url):
            parser.error("--url needs --key (or --keys) and --database-url")
        url, database_url = args.url.rstrip("/"), args.database_url
        instruments = _instruments_of(url, keys[0])
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="venue-bench-"))
        data_dir.chmod(0o755)  # the private Postgres runs as `postgres` when we are root
        venue = LocalVenue(Settings(redis_url=None, database_url=None), VenueConfig(),
                           data_dir, gateway_port=free_port(), say=say,
                           submitters=args.submitters,
                           env={"VENUE_GATEWAY_WORKERS": str(args.gateway_workers)}).start()
        url, keys, database_url = venue.gateway_url, tuple(venue.keys.values()), venue.database_url
        if args.mode == "ws":  # a session per account, as a firm runs them
            keys += asyncio.run(_bench_accounts(database_url, (
                args.connections or _CONNECTIONS[args.mode]) * args.processes - len(keys)))
        instruments = venue.venue.instruments
    try:
        connections = args.connections or _CONNECTIONS[args.mode]
        tag = f"b{int(time.time())}"
        specs = [LoadSpec(url=url, path=_PATHS[args.mode], keys=keys,
                          instruments=tuple(instruments),
                          duration_s=args.duration, connections=connections,
                          batch_size=args.batch_size if args.mode == "batch" else 0,
                          seed=i + 1, tag=f"{tag}p{i}", rate=args.rate / args.processes)
                 for i in range(args.processes)]
        before = asyncio.run(_count_orders(database_url))
        say(f"driving {url} for {args.duration:.0f}s ({args.mode}) ...")
        parts = venue.part_pids() if venue is not None else {}
        cpu_before = parts_cpu_seconds(parts)
        started = time.monotonic()
        results = _drive(specs)
        elapsed = time.monotonic() - started
        in_window = asyncio.run(_count_orders(database_url)) - before
        cpu = {name: seconds - cpu_before[name]
               for name, seconds in parts_cpu_seconds(parts).items()}
        accepted = [order_id for r in results for order_id in r.accepted_ids]
        say(f"{len(accepted)} accepted in {elapsed:.1f}s; auditing Postgres ...")
        audit = asyncio.run(audit_orders(database_url, accepted, args.settle))
        latencies = [ms for r in results for ms in r.latencies_ms]
        report = {
            "mode": args.mode, "duration_s": args.duration,
            "batch_size": args.batch_size if args.mode == "batch" else 1,
            "requests": sum(r.requests for r in results),
            "accepted": len(accepted),
            "rejected": sum(r.rejected for r in results),
            "refused": sum(r.refused for r in results),
            "reports_received": sum(r.reports for r in results),  # ws mode
            "persisted_orders": audit["persisted_orders"],
            "persisted_executions": audit["persisted_executions"],
            "trades": audit["trades"],
            "lost": audit["lost"],
            "duplicated": audit["duplicated"],
            "unbalanced_instruments": audit["unbalanced_instruments"],
            # Messages the venue's parts set aside (venue.contract.dead_letters), when its Redis
            # is known (a local venue, or REDIS_URL with --url).
            "dead_letters": asyncio.run(_dead_letters(
                venue.redis_url if venue is not None else Settings().redis_url,
                venue.venue if venue is not None else Settings().venue())),
            "orders_per_sec": round(in_window / args.duration, 1),
            "accepted_per_sec": round(len(accepted) / args.duration, 1),
            "ack_p50_ms": _percentile(latencies, 0.50),
            "ack_p99_ms": _percentile(latencies, 0.99),
            "ack_p999_ms": _percentile(latencies, 0.999),
            "ack_mean_ms": round(statistics.fmean(latencies), 3) if latencies else None,
            "load_cpu_s": round(sum(r.cpu_s for r in results), 2),
            # Where the time went: each part's CPU over the load window, in cores and in
            # µs per accepted order (a local venue only).
            "cpu_cores": {name: round(s / elapsed, 3) for name, s in cpu.items()},
            "cpu_us_per_order": {name: round(s * 1e6 / len(accepted), 2)
                                 for name, s in cpu.items()} if accepted else {},
            "load_processes": args.processes, "connections_per_process": connections,
            "gateway_workers": args.gateway_workers, "submitters": args.submitters,
            "cpus": os.cpu_count(),
        }
        if args.baseline:
            report["baseline_rps"] = round(_baseline(args, specs), 1)
            report["ratio"] = round(report["orders_per_sec"] / report["baseline_rps"], 3)
        print(json.dumps(report, indent=None if args.json else 2))
        return 0
    finally:
        if venue is not None:
            venue.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
