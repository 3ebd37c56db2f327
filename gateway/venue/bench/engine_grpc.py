"""`venue bench engine-grpc`: orders/s through the real engine server over loopback.

Runs the C++ client `venue-engine-grpc-bench`, which starts venue-engine on a free port
with a fresh --data-dir (journal on, --fsync as given), streams pre-encoded batches on
one Submit stream with --window batches in flight, and counts a batch done when its
ReportBatch arrives (sent only once the batch is in the journal). Prints JSON:
orders_per_sec, batch round-trip p50/p99.
"""

from __future__ import annotations

import argparse

from venue.bench.engine import bench_binary, run_bench
from venue.local.engine import engine_binary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="venue bench engine-grpc", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("mixed", "insert"), default="mixed")
    parser.add_argument("--ops", type=int, default=4_000_000, help="orders to send")
    parser.add_argument("--batch", type=int, default=4096, help="commands per CommandBatch")
    parser.add_argument("--window", type=int, default=8, help="batches in flight")
    parser.add_argument("--fsync", choices=("batch", "interval", "none"), default="batch")
    parser.add_argument("--cpus", default="auto", help="the engine's --cpus")
    parser.add_argument("--target", help="a running engine (HOST:PORT) instead of starting one")
    parser.add_argument("--parse", action="store_true", help="also decode every ReportBatch")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    command = [str(bench_binary("venue-engine-grpc-bench")), "--workload", args.workload,
               "--ops", str(args.ops), "--batch", str(args.batch), "--window", str(args.window),
               "--fsync", args.fsync, "--cpus", args.cpus, "--json"]
    command += ["--target", args.target] if args.target else ["--engine", str(engine_binary())]
    if args.parse:
        command.append("--parse")
    return run_bench(command, args.json)
