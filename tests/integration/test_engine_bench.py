"""`venue bench engine` and `venue bench engine-grpc` run their binaries and print one
JSON object with the documented fields. Nothing here looks at the numbers."""

from __future__ import annotations

import json
from pathlib import Path

from venue.bench import engine, engine_grpc


def test_engine_bench_prints_throughput_latency_and_allocations(built_engine: Path, capsys) -> None:
    assert engine.main(["--workload", "mixed", "--ops", "20000", "--warmup", "1000",
                        "--cpus", "none", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for field in ("ops_per_sec", "p50_ns", "p99_ns", "p999_ns", "max_ns", "allocations_on_hot_path"):
        assert field in result
    assert result["workload"] == "mixed" and result["ops"] == 20000


def test_engine_bench_at_a_fixed_rate_reports_the_offered_rate(built_engine: Path, capsys) -> None:
    assert engine.main(["--workload", "insert", "--ops", "20000", "--warmup", "1000",
                        "--rate", "200000", "--cpus", "none", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["offered_rate"] == 200000


def test_engine_grpc_bench_streams_to_a_journaling_engine(built_engine: Path, capsys) -> None:
    assert engine_grpc.main(["--ops", "20000", "--batch", "1000", "--cpus", "none", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["benchmark"] == "engine-grpc" and result["fsync"] == "batch"
    assert result["orders"] > 20000 and "orders_per_sec" in result
