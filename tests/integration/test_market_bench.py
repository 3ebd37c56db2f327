"""`venue bench market` runs a whole local venue, tiny, with subscribers beside the orders,
and prints its JSON fields. Nothing here looks at speed: a subscriber that sees a gap or
is cut off, or an update not timed, is a failure at any speed."""

from __future__ import annotations

import json
from pathlib import Path

from venue.bench import market


def test_the_subscribers_count_every_frame_and_the_measured_ones_time_each_update(
        built_engine: Path, capsys) -> None:
    assert market.main(["--subscribers", "20", "--measure-every", "4", "--duration", "2",
                        "--rate", "2000", "--batch-size", "50", "--connections", "2",
                        "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["gaps"], result["cut_off"]) == (0, 0)
    assert result["messages_per_sec"] > 0 and result["delays_sampled"] > 0
    # Five subscribers time their updates, at the socket and once parsed: the kernel's
    # receive time comes first.
    assert 0 < result["delay_p50_ms"] <= result["read_delay_p50_ms"]
    assert result["delay_max_ms"] <= result["read_delay_max_ms"]
    assert result["with_subscribers"]["accepted_per_sec"] > 0
    assert "subscribers" in result["with_subscribers"]["cpu_cores"]
    assert result["connections"] == 2 and result["throughput_ratio"] is not None
