"""The submitters' autoscaler over time series: bursts, flapping input, outages."""

from __future__ import annotations

from venue_operator.autoscale import (
    AT_TARGET,
    BOUNDS,
    PAUSED,
    QUEUE_UNREACHABLE,
    SCALE_DOWN_LIMITED,
    SCALE_UP_LIMITED,
    SCALED_DOWN,
    SCALED_UP,
    STABILIZING,
    History,
    Policy,
    decide,
    recommend,
)

POLICY = Policy(min_replicas=1, max_replicas=20, target_per_replica=100,
                stabilization_s=300, up_period_s=15, down_period_s=60)


def run(series, policy=POLICY, start=1, step=15, paused=False):
    """Feed (depth per tick) every `step` seconds; return the decisions."""
    replicas, history, decisions = start, History(), []
    for tick, depth in enumerate(series):
        decision = decide(tick * step, replicas, depth, policy, history, paused)
        replicas, history = decision.replicas, decision.history
        decisions.append(decision)
    return decisions


def replicas_of(decisions):
    return [d.replicas for d in decisions]


def test_desired_is_depth_over_target_rounded_up_and_clamped():
    assert recommend(0, POLICY) == 1  # never below min
    assert recommend(1, POLICY) == 1
    assert recommend(101, POLICY) == 2
    assert recommend(10**9, POLICY) == 20  # never above max


def test_a_burst_scales_up_at_once():
    [decision] = run([350])
    assert decision.replicas == 4 and decision.reason == SCALED_UP
    assert "350" in decision.message and "from 1 to 4" in decision.message


def test_scale_up_is_at_most_double_or_four_more_per_period():
    # From 6: +100% is 12, +4 is 10: the larger, 12, is the limit.
    decision = decide(0, 6, 5000, POLICY, History())
    assert decision.replicas == 12
    # From 1: +100% is 2, +4 is 5.
    assert decide(0, 1, 5000, POLICY, History()).replicas == 5


def test_within_one_period_the_increase_is_counted_from_its_start():
    first = decide(0, 1, 5000, POLICY, History())
    assert first.replicas == 5
    again = decide(5, 5, 5000, POLICY, first.history)
    assert again.replicas == 5 and again.reason == SCALE_UP_LIMITED
    later = decide(15, 5, 5000, POLICY, again.history)
    assert later.replicas == 10 and later.reason == SCALED_UP


def test_a_sustained_burst_climbs_to_max_and_stays():
    decisions = run([5000] * 6)
    assert replicas_of(decisions) == [5, 10, 20, 20, 20, 20]
    assert decisions[-1].reason == AT_TARGET


def test_scale_down_waits_for_the_stabilization_window():
    # 4 replicas of load for a minute, then the queue drains.
    series = [400] * 4 + [0] * 30
    decisions = run(series)
    replicas = replicas_of(decisions)
    assert replicas[:4] == [4, 4, 4, 4]
    drained_at = 4 * 15
    for tick, decision in enumerate(decisions[4:], start=4):
        if tick * 15 - drained_at < 300 - 15:
            assert decision.replicas == 4, (tick, decision)
            assert decision.reason == STABILIZING
    assert replicas[-1] == 1


def test_scale_down_removes_at_most_one_per_minute():
    decisions = run([400] * 21 + [0] * 40)
    changes = [(i * 15, d.replicas) for i, d in enumerate(decisions) if d.reason == SCALED_DOWN]
    assert [r for _, r in changes] == [3, 2, 1]
    times = [t for t, _ in changes]
    assert all(b - a >= 60 for a, b in zip(times, times[1:]))
    assert any(d.reason == SCALE_DOWN_LIMITED for d in decisions)


def test_flapping_input_does_not_flap_the_replicas():
    # Depth alternating high and low every tick for ten minutes.
    decisions = run([400, 0] * 20)
    replicas = replicas_of(decisions)
    assert replicas[0] == 4
    assert set(replicas) == {4}
    assert sum(1 for d in decisions if d.changed) == 1


def test_redis_unreachable_holds_and_never_scales_to_zero():
    policy = Policy(min_replicas=0, max_replicas=8, target_per_replica=100, stabilization_s=60)
    decisions = run([300, None, None, None, None, None, None], policy=policy, start=1)
    assert replicas_of(decisions) == [3] * 7
    assert all(d.reason == QUEUE_UNREACHABLE for d in decisions[1:])
    assert "Redis unreachable" in decisions[1].message


def test_after_an_outage_a_whole_window_is_watched_before_scaling_down():
    policy = Policy(min_replicas=0, max_replicas=8, target_per_replica=100, stabilization_s=60,
                    down_period_s=15)
    # Load, a long outage, then an empty queue: the old readings are gone, so the
    # empty readings must fill a fresh window first.
    series = [300] + [None] * 10 + [0] * 8
    decisions = run(series, policy=policy)
    after = decisions[11:]
    assert after[0].replicas == 3 and after[0].reason == STABILIZING
    first_down = next(i for i, d in enumerate(after) if d.reason == SCALED_DOWN)
    assert first_down * 15 >= 60


def test_an_empty_queue_with_min_zero_scales_to_zero_only_when_read():
    policy = Policy(min_replicas=0, max_replicas=4, target_per_replica=100, stabilization_s=0,
                    down_period_s=0)
    decisions = run([0, 0, 0], policy=policy, start=1)
    assert decisions[-1].replicas == 0


def test_a_fresh_operator_does_not_scale_down_on_its_first_reading():
    decision = decide(1000, 5, 0, POLICY, History())
    assert decision.replicas == 5 and decision.reason == STABILIZING


def test_paused_holds_whatever_the_queue_says():
    decisions = run([5000, 0, 5000], start=2, paused=True)
    assert replicas_of(decisions) == [2, 2, 2]
    assert all(d.reason == PAUSED for d in decisions)


def test_new_bounds_apply_at_once():
    narrowed = Policy(min_replicas=1, max_replicas=3, target_per_replica=100)
    decision = decide(0, 8, 0, narrowed, History())
    assert decision.replicas == 3 and decision.reason == BOUNDS
    raised = Policy(min_replicas=4, max_replicas=8, target_per_replica=100)
    assert decide(0, 1, None, raised, History()).replicas == 4


def test_policy_reads_spec_submitters():
    policy = Policy.from_spec({"min": 2, "max": 6, "targetQueueDepth": 500,
                               "scaleDownStabilizationSeconds": 30},
                              up_period_s=1, down_period_s=2)
    assert (policy.min_replicas, policy.max_replicas, policy.target_per_replica,
            policy.stabilization_s, policy.up_period_s, policy.down_period_s) == (2, 6, 500, 30, 1, 2)
