"""`venue bench engine`: the matching core alone, in process, one thread.

Runs the C++ benchmark binary `venue-engine-bench` (built beside venue-engine) and
prints its JSON: ops_per_sec, p50_ns, p99_ns, p999_ns, max_ns, allocations_on_hot_path.

  --workload mixed   exchange-core's mix: ~9% new GTC, 3% IOC, 6% cancel, 82% move,
                     ~1,000 resting orders over ~750 levels, 1,000 accounts
  --workload insert  Liquibook's insert test: alternating buy/sell limits in a
                     10-tick band that cross, quantity 100-1000, no cancels
  --rate R           offer R commands/s on a fixed schedule; latency is measured from
                     each command's scheduled time (no coordinated omission)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from venue.local.engine import engine_binary


def bench_binary(name: str) -> Path:
    """A benchmark binary: beside the engine binary (its build), else on PATH."""
    try:
        beside = engine_binary().parent / name
        if beside.exists():
            return beside
    except FileNotFoundError:
        pass
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    raise FileNotFoundError(f"{name} is not built: run `make engine`")


def run_bench(argv: list[str], as_json: bool) -> int:
    """Runs a benchmark binary, prints its JSON result (compact with --json)."""
    completed = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    if completed.returncode != 0:
        return completed.returncode
    result = json.loads(completed.stdout)
    if as_json:
        print(json.dumps(result))
    else:
        print("$ " + " ".join(argv), file=sys.stderr)
        print(json.dumps(result, indent=2))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="venue bench engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("mixed", "insert"), default="mixed")
    parser.add_argument("--ops", type=int, default=5_000_000, help="timed commands")
    parser.add_argument("--warmup", type=int, default=1_000_000, help="commands before timing")
    parser.add_argument("--rate", type=float, default=0,
                        help="offered commands/s (0: back to back, the throughput run)")
    parser.add_argument("--cpus", default="auto", help="auto | none | a CPU list: pin the thread")
    parser.add_argument("--hugepages", choices=("try", "require", "off"), default="try")
    parser.add_argument("--fifo", action="store_true",
                        help="SCHED_FIFO for the timed thread (root): keeps other processes "
                             "from preempting it; keep such a run under ~0.9 s")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    command = [str(bench_binary("venue-engine-bench")), "--workload", args.workload,
               "--ops", str(args.ops), "--warmup", str(args.warmup), "--cpus", args.cpus,
               "--hugepages", args.hugepages, "--seed", str(args.seed), "--json"]
    if args.rate > 0:
        command += ["--rate", str(args.rate)]
    if args.fifo:
        command.append("--fifo")
    return run_bench(command, args.json)
