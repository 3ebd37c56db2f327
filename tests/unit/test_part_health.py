"""The verdict on what the parts say of their health (venue.contract.health)."""

from __future__ import annotations

import json

from venue.contract.health import STALE_S, STALL_S, engine_field, verdict, writer_field

NOW = 1_800_000_000_000


def said(age_s: float, ok: bool = True, detail: str = "", **extra) -> bytes:
    return json.dumps({"at": NOW - int(age_s * 1000), "ok": ok, "detail": detail,
                       **extra}).encode()


def fields(**named: bytes) -> dict[bytes, bytes]:
    return {name.encode(): value for name, value in named.items()}


def checks(health: dict[bytes, bytes], partitions: int = 2) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for problem in verdict(health, partitions, NOW):
        out.setdefault(problem.check, []).append(problem.detail)
    return out


def healthy() -> dict[str, bytes]:
    return {writer_field("w1"): said(0.5, stalledS=0.2), engine_field(0, "s1"): said(0.3),
            engine_field(1, "s1"): said(0.3)}


def test_fresh_reports_of_every_part_are_healthy() -> None:
    assert checks(fields(**healthy())) == {}


def test_nothing_said_is_nothing_ready() -> None:
    assert set(checks({})) == {"persistence", "matching"}
    assert len(checks({})["matching"]) == 2  # each partition named


def test_a_writer_silent_past_stale_is_gone_even_if_it_said_ok() -> None:
    health = healthy() | {writer_field("w1"): said(STALE_S + 1)}
    assert checks(fields(**health))["persistence"][0].startswith("no writer has reported")


def test_the_newest_writer_speaks_for_persistence() -> None:
    health = healthy() | {writer_field("old"): said(5, ok=False, detail="ConnectionRefused")}
    assert checks(fields(**health)) == {}
    health[writer_field("old")] = said(0.1, ok=False, detail="ConnectionRefused")
    assert checks(fields(**health))["persistence"] == ["writer interrupted: ConnectionRefused"]


def test_persistence_stalled_past_the_limit_is_down() -> None:
    health = healthy() | {writer_field("w1"): said(0.5, stalledS=STALL_S + 5)}
    assert "has not moved for" in checks(fields(**health))["persistence"][0]


def test_one_submitter_cut_off_from_its_engine_is_enough() -> None:
    health = healthy() | {engine_field(1, "s2"): said(1, ok=False, detail="UNAVAILABLE")}
    assert checks(fields(**health))["matching"] == [
        "submitter s2 cannot reach engine partition 1: UNAVAILABLE"]


def test_garbage_in_the_hash_reads_as_silence() -> None:
    health = healthy() | {writer_field("w1"): b"not json", "engine:x:y": said(0)}
    assert "persistence" in checks(fields(**health))
