"""`venue bench writer` runs end to end, tiny, and prints its JSON fields. Nothing here
looks at the numbers."""

from __future__ import annotations

import json

from venue.bench import writer


def test_writer_bench_persists_its_backlog_and_prints_cpu_per_order(capsys) -> None:
    assert writer.main(["--orders", "1200", "--batch", "100", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["orders"] == 1200 and result["executions"] > 1200 and result["trades"] > 0
    for field in ("seconds", "events_per_sec", "orders_per_sec", "writer_cpu_s",
                  "postgres_cpu_s", "writer_us_per_order", "postgres_us_per_order"):
        assert field in result


def test_writer_bench_offers_batches_at_a_rate(capsys) -> None:
    assert writer.main(["--orders", "600", "--batch", "100", "--rate", "6000",
                        "--self-trade", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rate"] == 6000 and result["orders"] == 600
