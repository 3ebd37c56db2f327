"""Per-account limits (venue.api.limits): a token bucket per account, refusals that say
when to come back, the most orders a request may carry, each process its share."""

from __future__ import annotations

from venue.api.limits import (ACCOUNT_CONNECTIONS, ACCOUNT_RATE, ACCOUNT_REPLAYS, REPLAY_EVENTS_BURST,
                              REPLAY_EVENTS_PER_S, REPLAY_IN_PROGRESS, AccountLimits)


def test_an_account_gets_its_burst_then_its_rate_and_others_are_untouched():
    limits = AccountLimits(orders_per_s=10, burst=20, connections=2)
    assert limits.orders(1, 20, now=100.0) is None
    refused = limits.orders(1, 5, now=100.0)
    assert refused is not None and refused.reason == ACCOUNT_RATE and refused.retry_after == 1
    assert limits.orders(2, 20, now=100.0) is None  # another account has its own bucket
    assert limits.orders(1, 5, now=100.5) is None  # half a second refilled 5
    assert limits.orders(1, 1, now=100.5) is not None
    assert limits.orders(1, 20, now=1000.0) is None  # full again, never more than the burst
    assert limits.orders(1, 1, now=1000.0) is not None


def test_a_request_may_carry_at_most_the_burst_and_a_refusal_takes_nothing():
    limits = AccountLimits(orders_per_s=10, burst=20.5, connections=2)
    assert limits.most_at_once == 20  # the batch route refuses a larger one as too large
    assert limits.orders(1, 15, now=0.0) is None
    refused = limits.orders(1, 10, now=0.0)
    assert refused is not None and refused.retry_after == 1  # 4.5 short at 10 a second
    assert limits.orders(1, 5, now=0.0) is None  # the refusal took nothing


def test_each_process_enforces_its_share():
    limits = AccountLimits.share(orders_per_s=100, burst=50, connections=5, processes=2)
    assert (limits.rate, limits.burst, limits.connections) == (50, 25, 2)
    assert AccountLimits.share(100, 50, 1, processes=4).connections == 1


def test_sockets_are_counted_per_account():
    limits = AccountLimits(orders_per_s=10, burst=10, connections=2)
    assert limits.open_socket(1) is None and limits.open_socket(1) is None
    refused = limits.open_socket(1)
    assert refused is not None and refused.reason == ACCOUNT_CONNECTIONS
    assert limits.open_socket(2) is None
    limits.close_socket(1)
    assert limits.open_socket(1) is None


def test_replays_are_one_at_a_time_per_partition_and_charged_what_they_read() -> None:
    limits = AccountLimits(orders_per_s=10, burst=10, connections=2)
    assert limits.start_replay(1, 0, now=0.0) is None
    refused = limits.start_replay(1, 0, now=0.0)  # from another socket of the account
    assert refused is not None and refused.reason == REPLAY_IN_PROGRESS
    assert limits.start_replay(1, 1, now=0.0) is None  # another partition
    assert limits.start_replay(2, 0, now=0.0) is None  # another account
    # The first reads more than the bucket held: the account's next waits till it refills.
    limits.end_replay(1, 0, int(REPLAY_EVENTS_BURST + 3 * REPLAY_EVENTS_PER_S), now=0.0)
    limits.end_replay(1, 1, 0, now=0.0)
    for partition in (0, 1):
        refused = limits.start_replay(1, partition, now=1.0)
        assert refused is not None and refused.reason == ACCOUNT_REPLAYS
        assert refused.retry_after == 2, refused
    assert limits.start_replay(1, 0, now=3.5) is None
    limits.end_replay(2, 0, 10, now=0.0)
    assert limits.start_replay(2, 0, now=0.0) is None  # within its own bucket
