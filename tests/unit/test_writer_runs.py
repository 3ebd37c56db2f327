"""How the writer cuts what it read into transactions."""

from __future__ import annotations

from venue.writer import runs_of


def entry(number: int, size: int) -> tuple[bytes, dict[bytes, bytes]]:
    return f"{number}-0".encode(), {b"batch": bytes(size)}


def test_runs_keep_every_entry_in_order_within_the_byte_bound() -> None:
    read = [(b"events:0", [entry(1, 40), entry(2, 50), entry(3, 20)]),
            (b"events:1", [entry(4, 30), entry(5, 200), entry(6, 10)])]
    runs = runs_of(read, 100)
    assert [[(stream, [number for number, _ in entries]) for stream, entries in run]
            for run in runs] == [
        [(b"events:0", [b"1-0", b"2-0"])],
        [(b"events:0", [b"3-0"]), (b"events:1", [b"4-0"])],
        [(b"events:1", [b"5-0"])],  # larger than the bound: a run of its own
        [(b"events:1", [b"6-0"])],
    ]


def test_a_small_read_is_one_run_and_nothing_read_is_none() -> None:
    read = [(b"events:0", [entry(1, 10), entry(2, 10)])]
    assert runs_of(read, 4 << 20) == [read]
    assert runs_of([], 100) == []
