"""How the gateway reads a shard's lag when Redis cannot count it."""

from __future__ import annotations

from venue.contract.lag import StreamHistory


def history(*samples: tuple[tuple[int, int], int]) -> StreamHistory:
    kept = StreamHistory()
    for last_id, added in samples:
        kept.add(last_id, added)
    return kept


def test_a_confirmed_id_at_a_sample_reads_exactly_that_samples_count() -> None:
    kept = history(((1000, 0), 10), ((1500, 3), 60))
    assert kept.entries_read_at((1000, 0)) == 10
    assert kept.entries_read_at((1500, 3)) == 60
    assert kept.entries_read_at((1700, 0)) == 60  # past the newest sample: all of it


def test_a_confirmed_id_between_samples_is_interpolated_by_time() -> None:
    kept = history(((1000, 0), 10), ((2000, 0), 110))
    assert kept.entries_read_at((1500, 0)) == 60
    # Never the count of the later sample: its last entry is not confirmed yet.
    assert kept.entries_read_at((1999, 99)) == 109


def test_a_confirmed_id_older_than_every_sample_is_unknown() -> None:
    assert history(((1000, 0), 10)).entries_read_at((999, 0)) is None
    assert StreamHistory().entries_read_at((1, 0)) is None


def test_samples_without_new_entries_are_not_kept_and_a_recreated_stream_starts_over() -> None:
    kept = history(((1000, 0), 10), ((1000, 0), 10), ((5, 0), 2))
    assert kept.entries_read_at((1000, 0)) == 2
    assert kept.entries_read_at((4, 0)) is None
