"""`venue bench operator` runs end to end, tiny: two venues on the session's cluster
(through KUBECONFIG, as a user's cluster would be), a short tick, a one-second idle
window. Only the report's shape is checked; tests never assert on time."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_the_operator_bench_reports_two_ready_venues(kubeconfig, engine_nodes):
    proc = subprocess.run(
        [sys.executable, "-m", "venue.cli", "bench", "operator", "--venues", "2",
         "--tick", "1", "--idle", "1", "--timeout", "120", "--bind-volumes", "--kwok-parts",
         "--json"],
        env={**os.environ, "KUBECONFIG": kubeconfig},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout)
    assert result["venues"] == 2
    assert result["nodes"] >= 1 and result["engine_nodes"] >= 1
    assert result["cluster"] == "$KUBECONFIG"
    assert 0 < result["venue_seconds_to_ready_p50"] <= result["venue_seconds_to_ready_max"]
    assert result["seconds_to_all_ready"] >= result["venue_seconds_to_ready_max"]
    assert result["operator_cpu_seconds"] > 0 and result["operator_peak_rss_mib"] > 0
    assert result["operator_cpu_seconds_idle"] >= 0
    assert result["kubernetes_version"].startswith("v1.")
