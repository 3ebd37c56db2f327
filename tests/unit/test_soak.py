"""venue bench soak's reading of its samples: the trend that decides whether memory is
flat, and the plot."""

from __future__ import annotations

from pathlib import Path

import pytest

from venue.bench.soak import disk_bytes, plot, summarize, trend


def sample(t: float, gateway: float, redis: float) -> dict:
    return {"t_s": t, "memory_mib": {"gateway": gateway, "engine-0": 100.0},
            "redis_used_memory_mib": redis, "disk_mib": {"postgres": t}, "writer_lag_orders": 5,
            "accepted_per_sec": 1000.0, "ack_p50_ms": 2.0, "ack_p99_ms": 9.0}


def test_a_flat_series_has_no_trend_and_a_ramp_its_growth_over_its_mean() -> None:
    assert trend([(t, 50.0) for t in range(0, 600, 60)]) == 0.0
    # 100 -> 200 over the span, mean 150: it grew by two thirds of its level.
    assert trend([(t, 100.0 + t / 6) for t in range(0, 660, 60)]) == pytest.approx(2 / 3)
    assert trend([(0, 1.0), (60, 2.0)]) is None  # too few points to say


def test_memory_is_judged_over_the_last_window_only() -> None:
    # The gateway grows for the first 20 minutes (warm-up), then stays; Redis grows on.
    samples = [sample(t, min(t, 1200) / 10 + 50, 10 + t / 60) for t in range(60, 3660, 60)]
    summary = summarize(samples, window_s=2400)
    assert summary["memory_mib.gateway"]["flat"] is True
    assert summary["memory_mib.gateway"]["first"] == 56.0
    assert summary["redis_used_memory_mib"]["flat"] is False
    assert summary["redis_used_memory_mib"]["trend_pct"] > 5
    assert "flat" not in summary["disk_mib.postgres"]  # disk may grow with what is kept


def test_the_plot_is_a_png_and_disk_is_counted_in_blocks(tmp_path: Path) -> None:
    path = tmp_path / "soak.png"
    samples = [sample(t, 60.0, 12.0) for t in range(60, 600, 60)]
    # A sample whose Redis did not answer in time: a gap in its series, not the end.
    samples[3] |= {"redis_used_memory_mib": None, "writer_lag_orders": None,
                   "errors": ["TimeoutError('Timeout reading from 127.0.0.1:6379')"]}
    assert summarize(samples, window_s=600)["redis_used_memory_mib"]["flat"] is True
    plot(samples, path, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data").write_bytes(b"x" * 10_000)
    assert disk_bytes(tmp_path / "sub") >= 10_000
