"""How submitters share shards."""

import pytest

from venue.submitter.leases import fair_share


@pytest.mark.parametrize("shards, live, share", [
    (4, 1, 4), (4, 2, 2), (4, 3, 2), (4, 4, 1), (4, 9, 1), (1, 3, 1), (16, 0, 16)])
def test_each_live_submitter_takes_at_most_its_fair_share(shards, live, share):
    assert fair_share(shards, live) == share


def test_fair_shares_always_cover_every_shard():
    for shards in range(1, 40):
        for live in range(1, 12):
            assert fair_share(shards, live) * live >= shards
