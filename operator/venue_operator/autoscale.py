"""How many submitters a venue should run: a pure decision over time.

desired = ceil(queue depth / target per replica), clamped to [min, max]. Up at once, but
at most +100% or +4 replicas (whichever is more) per 15 s; down only when every
recommendation over the stabilization window was lower, and at most one replica per
60 s. A queue that cannot be read holds the current count (never scales to zero by
accident), and a fresh start or an outage must see a whole window of readings before it
scales down. The decision and its reason go to status and an Event.

`decide` keeps nothing: what it must remember between calls is in `History`, which it
takes and returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

PAUSE_ANNOTATION = "tradingvenue.io/autoscaling-paused"

# Reasons, as they appear in status.submitters.reason and Events.
SCALED_UP = "ScaledUp"
SCALED_DOWN = "ScaledDown"
AT_TARGET = "AtTarget"
SCALE_UP_LIMITED = "ScaleUpLimited"
SCALE_DOWN_LIMITED = "ScaleDownLimited"
STABILIZING = "StabilizingDown"
QUEUE_UNREACHABLE = "QueueUnreachable"
PAUSED = "Paused"
BOUNDS = "OutsideBounds"

CHANGED = frozenset({SCALED_UP, SCALED_DOWN, BOUNDS})


@dataclass(frozen=True)
class Policy:
    min_replicas: int
    max_replicas: int
    target_per_replica: int
    stabilization_s: float = 300.0
    up_period_s: float = 15.0
    up_max_percent: int = 100
    up_max_replicas: int = 4
    down_period_s: float = 60.0
    down_max_replicas: int = 1

    @classmethod
    def from_spec(cls, submitters: dict[str, Any], **rates: Any) -> Policy:
        """From spec.submitters; `rates` (the up/down periods) come from operator settings."""
        return cls(min_replicas=submitters["min"], max_replicas=submitters["max"],
                   target_per_replica=submitters["targetQueueDepth"],
                   stabilization_s=float(submitters["scaleDownStabilizationSeconds"]), **rates)

    def clamp(self, replicas: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, replicas))


@dataclass(frozen=True)
class History:
    """What the autoscaler remembers between decisions (in the operator's memory)."""

    # When the current unbroken run of queue readings began; None before the first one
    # and after an outage.
    observing_since: float | None = None
    # (time, recommended replicas) within the stabilization window.
    recommendations: tuple[tuple[float, int], ...] = ()
    # (time, replicas added (+) or removed (-)) within the longer rate period.
    changes: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class Decision:
    replicas: int
    current: int
    reason: str
    message: str
    history: History = field(repr=False)
    recommended: int | None = None  # ceil(depth / target), clamped; None without a reading

    @property
    def changed(self) -> bool:
        return self.replicas != self.current


def recommend(depth: int, policy: Policy) -> int:
    return policy.clamp(math.ceil(depth / policy.target_per_replica))


def decide(now: float, current: int, depth: int | None, policy: Policy, history: History,
           paused: bool = False) -> Decision:
    """The replicas to run now. `current`: what the Deployment was last given; `depth`:
    queued plus unacknowledged orders over all shards, None when Redis cannot be read."""
    history = _forget(now, policy, history)
    if paused:
        return Decision(current, current, PAUSED,
                        f"autoscaling is paused ({PAUSE_ANNOTATION}); holding {current}",
                        history)

    if depth is None:
        # An outage breaks the run of readings: scaling down waits for a whole new window.
        history = replace(history, observing_since=None, recommendations=())
        held = policy.clamp(current)
        if held != current:
            return _scaled(now, current, held, BOUNDS,
                           f"submitters {current} outside [{policy.min_replicas}, "
                           f"{policy.max_replicas}]: set to {held} (queue depth unknown)",
                           history, None)
        return Decision(current, current, QUEUE_UNREACHABLE,
                        f"queue depth unknown (Redis unreachable): holding {current}", history)

    recommended = recommend(depth, policy)
    history = replace(
        history,
        observing_since=now if history.observing_since is None else history.observing_since,
        recommendations=(*history.recommendations, (now, recommended)))
    wants = (f"queue depth {depth} at {policy.target_per_replica} per submitter "
             f"recommends {recommended}")

    if not policy.min_replicas <= current <= policy.max_replicas:
        # The bounds changed under us: honour them at once, whatever the rate limits.
        target = policy.clamp(current)
        return _scaled(now, current, target, BOUNDS,
                       f"submitters {current} outside [{policy.min_replicas}, "
                       f"{policy.max_replicas}]: set to {target}; {wants}", history, recommended)

    if recommended > current:
        limit = _up_limit(now, current, policy, history)
        target = min(recommended, limit)
        if target <= current:
            return Decision(current, current, SCALE_UP_LIMITED,
                            f"{wants}; at most {limit} within {policy.up_period_s:g}s, "
                            f"holding {current}", history, recommended)
        return _scaled(now, current, target, SCALED_UP,
                       f"{wants}; scaled up from {current} to {target}", history, recommended)

    if recommended < current:
        watched = now - history.observing_since
        if watched < policy.stabilization_s:
            return Decision(current, current, STABILIZING,
                            f"{wants}; the queue has been watched {watched:g}s of the "
                            f"{policy.stabilization_s:g}s window, holding {current}",
                            history, recommended)
        stabilized = max(r for _, r in history.recommendations)
        if stabilized >= current:
            return Decision(current, current, STABILIZING,
                            f"{wants}; the highest recommendation of the last "
                            f"{policy.stabilization_s:g}s is {stabilized}, holding {current}",
                            history, recommended)
        removed = -sum(d for t, d in history.changes
                       if d < 0 and now - t < policy.down_period_s)
        allowed = policy.down_max_replicas - removed
        if allowed <= 0:
            return Decision(current, current, SCALE_DOWN_LIMITED,
                            f"{wants}; removed {removed} within {policy.down_period_s:g}s "
                            f"already, holding {current}", history, recommended)
        target = max(stabilized, current - allowed)
        return _scaled(now, current, target, SCALED_DOWN,
                       f"{wants} (stable for {policy.stabilization_s:g}s); scaled down from "
                       f"{current} to {target}", history, recommended)

    return Decision(current, current, AT_TARGET, f"{wants}; running {current}", history,
                    recommended)


def _up_limit(now: float, current: int, policy: Policy, history: History) -> int:
    added = sum(d for t, d in history.changes if d > 0 and now - t < policy.up_period_s)
    base = max(current - added, 0)  # replicas at the start of the period
    by_percent = base + math.ceil(base * policy.up_max_percent / 100)
    return min(policy.max_replicas, max(by_percent, base + policy.up_max_replicas))


def _scaled(now: float, current: int, target: int, reason: str, message: str,
            history: History, recommended: int | None) -> Decision:
    history = replace(history, changes=(*history.changes, (now, target - current)))
    return Decision(target, current, reason, message, history, recommended)


def _forget(now: float, policy: Policy, history: History) -> History:
    keep_changes = max(policy.up_period_s, policy.down_period_s)
    return replace(
        history,
        recommendations=tuple((t, r) for t, r in history.recommendations
                              if now - t < policy.stabilization_s),
        changes=tuple((t, d) for t, d in history.changes if now - t < keep_changes))
