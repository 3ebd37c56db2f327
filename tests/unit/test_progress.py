"""How the writer tells which engine sequences it has persisted."""

from venue.writer.progress import SequenceProgress


def test_contiguous_ranges_advance_through():
    progress = SequenceProgress()
    progress.add(1, 10)
    progress.add(11, 11)
    assert (progress.through, progress.head) == (11, 11)
    assert progress.missing_for() == 0.0


def test_a_gap_holds_through_until_it_is_filled_in_any_order():
    progress = SequenceProgress(through=5)
    progress.add(20, 30)
    progress.add(12, 15)
    assert (progress.through, progress.head) == (5, 30)
    progress.add(6, 11)
    assert progress.through == 15
    progress.add(16, 19)
    assert progress.through == 30


def test_a_replayed_range_already_persisted_changes_nothing():
    progress = SequenceProgress(through=100)
    progress.add(1, 100)
    progress.add(50, 101)
    assert progress.through == 101


def test_a_gap_at_the_end_is_seen_from_the_engines_head():
    progress = SequenceProgress(through=7)
    progress.saw_head(9)
    assert progress.missing_for(now=progress._since + 3) == 3
    progress.add(8, 9)
    assert progress.missing_for() == 0.0
