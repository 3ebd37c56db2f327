"""How the writer cuts what it read into transactions, and when it says a shard's orders
are persisted."""

from __future__ import annotations

from venue.contract.config import Settings, VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.contract.entries import Mark
from venue.writer.process import Writer
from venue.writer.rows import Rows, runs_of


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


def batch(partition: int, next_sequence: int) -> bytes:
    return pb.ReportBatch(partition=partition, next_sequence=next_sequence).SerializeToString()


def test_a_shards_mark_holds_once_its_partition_is_persisted_through_its_batch() -> None:
    writer = Writer(Settings(redis_url="redis://127.0.0.1:1"), VenueConfig(partitions=2))
    writer.resume_from({})
    rows = Rows()
    rows.add_serialized(batch(0, 11), b"1 5-0 100;")
    rows.add_serialized(batch(0, 21), b"1 6-0 150;2 6-1 30;")
    rows.add_serialized(batch(1, 4), b"3 7-0 9;")
    rows.add_serialized(batch(0, 31))  # no marks: a replayed batch
    writer._advance(rows)
    assert writer.pending_marks.now_true({0: 15}) == [Mark(1, (5, 0), 100)]
    assert writer.pending_marks.now_true({0: 12}) == []  # an older through moves nothing
    assert writer.pending_marks.now_true({1: 3}) == [Mark(3, (7, 0), 9)]
    assert sorted(writer.pending_marks.now_true({0: 40})) == [Mark(1, (6, 0), 150),
                                                        Mark(2, (6, 1), 30)]
    assert writer.pending_marks._committed == {0: 40, 1: 3}
    # A batch of no events read once its partition is persisted through it: its marks
    # hold at the next write, whichever partition that one moves.
    rows = Rows()
    rows.add_serialized(batch(0, 35), b"1 8-0 160;")
    writer._advance(rows)
    assert writer.pending_marks.now_true({1: 5}) == [Mark(1, (8, 0), 160)]
