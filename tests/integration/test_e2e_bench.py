"""`venue bench e2e` runs a whole local venue, tiny, and prints its JSON fields. Nothing
here looks at speed; an order lost or doubled is a failure at any speed."""

from __future__ import annotations

import json
from pathlib import Path

from venue.bench import e2e

PARTS = {"gateway", "submitter-0", "writer", "engine-0", "redis", "postgres"}


def test_batch_mode_accounts_for_every_order_and_each_parts_cpu(built_engine: Path,
                                                                 capsys) -> None:
    assert e2e.main(["--mode", "batch", "--duration", "2", "--batch-size", "50",
                     "--connections", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accepted"] > 0 and result["rejected"] == result["refused"] == 0
    assert result["persisted_orders"] == result["accepted"]
    assert (result["lost"], result["duplicated"], result["unbalanced_instruments"]) == (0, 0, 0)
    assert result["dead_letters"] == 0
    assert set(result["cpu_us_per_order"]) == PARTS == set(result["cpu_cores"])
    for field in ("orders_per_sec", "ack_p50_ms", "ack_p99_ms", "ack_p999_ms", "load_cpu_s"):
        assert field in result


def test_single_mode_measures_the_bare_baseline_too(built_engine: Path, capsys) -> None:
    assert e2e.main(["--mode", "single", "--duration", "1", "--connections", "4",
                     "--baseline", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["batch_size"] == 1 and result["lost"] == 0 and result["duplicated"] == 0
    assert result["baseline_rps"] > 0 and "ratio" in result


def test_ws_mode_sends_orders_on_sockets_and_reads_their_reports(built_engine: Path,
                                                                  capsys) -> None:
    assert e2e.main(["--mode", "ws", "--duration", "1", "--connections", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accepted"] > 0 and result["lost"] == 0 and result["duplicated"] == 0
    assert result["reports_received"] >= result["accepted"]  # at least each order's "new"


def test_url_mode_drives_a_running_venue_with_its_own_instruments(local_venue, database_url,
                                                                  capsys) -> None:
    # As against a venue in a cluster: its gateway's URL, two accounts' keys, its Postgres;
    # the instruments come from its API, not from this machine's config.
    keys = list(local_venue.keys.values())
    assert e2e.main(["--mode", "batch", "--duration", "1", "--batch-size", "20",
                     "--connections", "2", "--url", local_venue.gateway_url,
                     "--key", keys[0], "--key", keys[1], "--database-url", database_url,
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accepted"] > 0 and result["rejected"] == 0
    assert (result["lost"], result["duplicated"]) == (0, 0)
    assert result["trades"] > 0  # two accounts: the orders cross
