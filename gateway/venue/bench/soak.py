"""`venue bench soak`: a venue at a steady rate for a long time, and whether it stays bounded.

Starts a local venue and drives it at --rate orders/s (batch requests, as `venue bench
e2e --mode batch --rate`, each order priced through the mid so that the book stays
shallow: no one cancels) for --duration seconds. Every --sample seconds, while the load
runs, it records:
- each part's memory: the proportional set size of its process tree (a page Postgres's
  backends or the gateway's workers share counts once);
- Redis's used_memory;
- the disk under Redis's, each engine's and Postgres's data directories;
- the writer's lag: orders queued and not yet in Postgres;
- the orders accepted and the ack p50 / p99 of the interval.
At the end it waits until Postgres holds every accepted order and prints JSON: the
samples, and for each series its first, last and extreme values and its trend over the
last --trend-window seconds: the least-squares slope times the window, over the mean
(the bar for memory and Redis: within 5%). With --plot FILE.png, a plot of each series
over time.
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
from redis.asyncio import Redis
from redis.exceptions import RedisError

from venue.bench.cpu import tree_pss_bytes
from venue.bench.e2e import _count_orders, _percentile
from venue.bench.load import LoadSpec, run
from venue.contract.config import Settings, VenueConfig
from venue.contract.entries import unpersisted_orders
from venue.contract.keys import Keys
from venue.db.partitions import TABLES
from venue.local.process import free_port
from venue.local.venue import LocalVenue

MIB = 1 << 20
# Series the bar holds flat after warm-up (memory), and those it lets grow with what is
# retained (disk).
FLAT_PREFIXES = ("memory_mib.", "redis_used_memory_mib")


def disk_bytes(path: Path) -> int:
    """Bytes allocated under `path` (du: blocks, not apparent sizes)."""
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def trend(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of (t, value) times the points' time span, over their
    mean: how much the series grew across the span, as a fraction of its level."""
    if len(points) < 3:
        return None
    times = [t for t, _ in points]
    values = [v for _, v in points]
    mean_v = statistics.fmean(values)
    if mean_v == 0:
        return 0.0
    slope = statistics.linear_regression(times, values).slope
    return slope * (times[-1] - times[0]) / mean_v


def summarize(samples: list[dict], window_s: float) -> dict[str, dict]:
    """Per series (a flattened key of the samples): first, last, min, max, and the trend
    over the samples of the last window_s seconds."""
    series: dict[str, list[tuple[float, float]]] = {}
    for sample in samples:
        for name, value in _flatten(sample).items():
            if name != "t_s" and value is not None:
                series.setdefault(name, []).append((sample["t_s"], value))
    end = samples[-1]["t_s"] if samples else 0.0
    summary = {}
    for name, points in series.items():
        recent = [p for p in points if p[0] >= end - window_s]
        change = trend(recent)
        summary[name] = {"first": points[0][1], "last": points[-1][1],
                         "min": min(v for _, v in points), "max": max(v for _, v in points),
                         "trend_pct": None if change is None else round(100 * change, 2)}
        if name.startswith(FLAT_PREFIXES):
            summary[name]["flat"] = change is not None and abs(change) <= 0.05
    return summary


def _flatten(sample: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in sample.items():
        if isinstance(value, list):  # errors
            continue
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def plot(samples: list[dict], path: Path, title: str) -> None:
    """A PNG of each series over time: memory, Redis, disk, lag, acks, rate."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t_s"] / 60 for s in samples]
    panels = [("memory (PSS, MiB)", "memory_mib"), ("Redis used_memory (MiB)", None),
              ("disk (MiB)", "disk_mib"), ("writer lag (orders)", None),
              ("ack (ms)", None), ("orders/s accepted", None)]
    figure, axes = plt.subplots(3, 2, figsize=(13, 10), sharex=True)
    for axis, (label, group) in zip(axes.flat, panels):
        if group is not None:
            names = dict.fromkeys(name for s in samples for name in s.get(group, {}))
            for name in names:
                axis.plot(minutes, [_nan(s.get(group, {}).get(name)) for s in samples],
                          label=name)
            axis.legend(fontsize=7)
        elif label.startswith("Redis"):
            axis.plot(minutes, [_nan(s.get("redis_used_memory_mib")) for s in samples])
        elif label.startswith("writer"):
            axis.plot(minutes, [_nan(s.get("writer_lag_orders")) for s in samples])
        elif label.startswith("ack"):
            axis.plot(minutes, [_nan(s.get("ack_p50_ms")) for s in samples], label="p50")
            axis.plot(minutes, [_nan(s.get("ack_p99_ms")) for s in samples], label="p99")
            axis.legend(fontsize=7)
        else:
            axis.plot(minutes, [_nan(s.get("accepted_per_sec")) for s in samples])
        axis.set_title(label, fontsize=10)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("minutes")
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


async def _redis_state(redis_url: str, keys: Keys) -> tuple[float, int]:
    """Redis's used_memory (MiB) and the writer's lag (orders queued, not in Postgres)."""
    redis = Redis.from_url(redis_url, socket_timeout=30, socket_connect_timeout=30)
    try:
        memory = (await redis.info("memory"))["used_memory"]
        queued = await redis.hgetall(keys.queued_counts)
        persisted = await redis.hgetall(keys.persisted_marks)
        return round(memory / MIB, 2), unpersisted_orders(queued, persisted)
    finally:
        await redis.aclose()


async def _table_sizes(database_url: str) -> dict[str, float]:
    connection = await asyncpg.connect(database_url)
    try:
        # Each table with all its day partitions (venue.db.partitions).
        return {table: round(await connection.fetchval(
            "SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree($1)",
            table) / MIB, 1) for table in TABLES}
    finally:
        await connection.close()


def _measure(venue: LocalVenue, keys: Keys) -> dict:
    """One sample of every series but the load's. A series that cannot be read this time
    (Redis too busy to answer in 30 s, say) is None and the error is kept: a soak is not
    ended by its own measuring."""
    sample: dict = {}
    try:
        sample |= _measure_memory_and_disk(venue)
    except OSError as error:
        sample["errors"] = [repr(error)]
    try:
        redis_memory, lag = asyncio.run(_redis_state(venue.redis_url, keys))
    except (RedisError, OSError) as error:
        redis_memory, lag = None, None
        sample.setdefault("errors", []).append(repr(error))
    return sample | {"redis_used_memory_mib": redis_memory, "writer_lag_orders": lag}


def _measure_memory_and_disk(venue: LocalVenue) -> dict:
    memory = {}
    for name, pid in sorted(venue.part_pids().items()):
        try:
            memory[name] = round(tree_pss_bytes(pid) / MIB, 1)
        except OSError:
            memory[name] = None
    disk = {"redis": venue.data_dir / "redis", "postgres": venue.data_dir / "postgres"}
    disk |= {f"engine-{e.partition}": venue.data_dir / f"engine-{e.partition}"
             for e in venue.engines}
    return {"memory_mib": memory,
            "disk_mib": {name: round(disk_bytes(path) / MIB, 1) for name, path in disk.items()}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="venue bench soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of load")
    parser.add_argument("--rate", type=float, required=True, help="orders/s to offer")
    parser.add_argument("--sample", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--trend-window", type=float, default=2400.0,
                        help="seconds at the end over which each series' trend is taken")
    parser.add_argument("--plot", type=Path, help="write a PNG of the series here")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--batch-size", type=int, default=500, help="orders per batch request")
    parser.add_argument("--connections", type=int, default=4, help="connections of the load")
    parser.add_argument("--dedup-window", type=int,
                        help="the venue's clientOrderId window in seconds (default: the "
                        "venue's); claims reach their level after three windows")
    parser.add_argument("--data-dir", type=Path,
                        help="the venue's data directory (default: a temporary one, removed)")
    parser.add_argument("--settle", type=float, default=600.0,
                        help="most seconds to wait for Postgres to hold every accepted order")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    say = (lambda _: None) if args.json else (lambda text: print(text, file=sys.stderr))

    if args.dedup_window is not None:  # read by the gateway's settings
        os.environ["VENUE_DEDUP_WINDOW_S"] = str(args.dedup_window)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="venue-soak-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o755)  # the private Postgres runs as `postgres` when we are root
    venue = LocalVenue(Settings(redis_url=None, database_url=None), VenueConfig(), data_dir,
                       gateway_port=free_port(), say=say).start()
    keys = Keys(venue.venue.name)
    samples: list[dict] = []
    accepted = 0
    try:
        before = asyncio.run(_count_orders(venue.database_url))
        tag = f"s{int(time.time())}"
        started = time.monotonic()
        chunks = max(1, round(args.duration / args.sample))
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            for chunk in range(chunks):
                spec = LoadSpec(url=venue.gateway_url, path="/v1/orders/batch",
                                keys=tuple(venue.keys.values()),
                                instruments=tuple(venue.venue.instruments),
                                duration_s=args.sample, connections=args.connections,
                                batch_size=args.batch_size, seed=chunk + 1,
                                tag=f"{tag}c{chunk}", rate=args.rate, crossing=True)
                chunk_started = time.monotonic()
                pending = pool.map_async(run, [spec])
                # Measured near the end of the interval, while its load still runs.
                time.sleep(max(0.0, chunk_started + args.sample * 0.9 - time.monotonic()))
                sample = {"t_s": round(time.monotonic() - started, 1)}
                sample |= _measure(venue, keys)
                result = pending.get()[0]
                accepted += len(result.accepted_ids)
                sample |= {"accepted_per_sec": round(len(result.accepted_ids) / args.sample, 1),
                           "refused": result.refused, "rejected": result.rejected,
                           "ack_p50_ms": _percentile(list(result.latencies_ms), 0.50),
                           "ack_p99_ms": _percentile(list(result.latencies_ms), 0.99)}
                samples.append(sample)
                print(json.dumps(sample), file=sys.stderr, flush=True)  # progress, even with --json
        elapsed = time.monotonic() - started
        say(f"{accepted} accepted in {elapsed:.0f}s; waiting for Postgres to hold them ...")
        deadline = time.monotonic() + args.settle
        while True:
            persisted = asyncio.run(_count_orders(venue.database_url)) - before
            if persisted >= accepted or time.monotonic() > deadline:
                break
            time.sleep(1)
        window = min(args.trend_window, elapsed)
        summary = summarize(samples, window)
        report = {
            "duration_s": round(elapsed, 1), "rate": args.rate, "sample_s": args.sample,
            "trend_window_s": window, "accepted": accepted,
            "accepted_per_sec": round(accepted / elapsed, 1),
            # Counted, not matched id by id (a soak's ids would not fit a temp table
            # quickly): persisted less accepted, so a lost order reads negative.
            "persisted": persisted, "missing": max(0, accepted - persisted),
            "extra": max(0, persisted - accepted),
            "flat": all(s["flat"] for s in summary.values() if "flat" in s),
            "table_mib": asyncio.run(_table_sizes(venue.database_url)),
            "disk_bytes_per_order": {
                name: round(value * MIB / persisted, 1) for name, value in samples[-1].get(
                    "disk_mib", {}).items()} if persisted and samples else {},
            "series": summary, "samples": samples,
        }
        if args.plot is not None:
            plot(samples, args.plot, f"venue bench soak --rate {args.rate:.0f}: "
                 f"{elapsed / 60:.0f} min, {accepted:,} orders")
            report["plot"] = str(args.plot)
        print(json.dumps(report, indent=None if args.json else 2))
        return 0
    finally:
        venue.stop()
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
