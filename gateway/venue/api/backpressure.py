"""Backpressure: when the gateway stops taking new orders, a verdict over sampled
numbers (like the operator's autoscale.decide), with no I/O of its own.

- A shard's lag (venue.contract.lag) over its limit: that shard refuses new orders
  (`shard_busy`), and says when to come back by how fast the submitters drain it.
- The venue's unpersisted orders over their limit: every shard refuses (`persistence_
  behind`): otherwise a venue taking orders faster than Postgres stores them grows its
  Redis without bound. When to come back: by how fast the count falls, or, if it has
  not fallen for STALL_S while refusing, a while.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

# Retry-After when the drain rate is unknown (none seen yet, or stalled: a lease expires
# within seconds and another submitter takes the shard).
STALLED_RETRY_AFTER_S = 5
MAX_RETRY_AFTER_S = 30
# Refusing for this long without the unpersisted count falling: the writer is stalled.
STALL_S = 2.0

SHARD_BUSY = "shard_busy"
PERSISTENCE_BEHIND = "persistence_behind"
# The rejection types of backpressure: the order may be sent again after Retry-After.
BACKPRESSURE_REASONS = frozenset({SHARD_BUSY, PERSISTENCE_BEHIND})


class Refusal(NamedTuple):
    """Why new orders are refused for now, and when to send them again."""

    retry_after: int  # seconds
    reason: str  # SHARD_BUSY or PERSISTENCE_BEHIND
    detail: str


def smoothed(previous: float | None, rate: float) -> float:
    """A rate just measured, half and half with the one before (when there was one)."""
    return rate if previous is None else 0.5 * previous + 0.5 * rate


def shard_refusal(shard: int, lag: int, limit: int, drain_rate: float | None) -> Refusal | None:
    """The shard's refusal when its lag is over the limit; its Retry-After is about how
    long the submitters need to bring it back under."""
    if lag <= limit:
        return None
    if not drain_rate or drain_rate <= 0:
        retry_after = STALLED_RETRY_AFTER_S
    else:
        retry_after = max(1, min(MAX_RETRY_AFTER_S, math.ceil((lag - limit) / drain_rate)))
    return Refusal(retry_after, SHARD_BUSY,
                   f"shard {shard} is over its queue limit; retry after {retry_after} s")


@dataclass
class Persistence:
    """What the persistence verdict remembers between samples."""

    seen: tuple[float, int] | None = None  # (when, unpersisted count) last sampled
    fall_rate: float | None = None  # unpersisted orders stored per second
    fell_at: float = float("-inf")  # when the count last fell
    refusing_since: float | None = None


def persistence_refusal(state: Persistence, now: float, count: int,
                        limit: int | None) -> Refusal | None:
    """The refusal of every new order while more than `limit` orders await Postgres
    (updating `state`), or None."""
    before, state.seen = state.seen, (now, count)
    if before is not None and now > before[0] and count < before[1]:
        # Only a fall says how fast the writer stores: while orders come in, the count
        # is their difference. Refusing stops them, so then the fall is the writer's.
        state.fall_rate = smoothed(state.fall_rate, (before[1] - count) / (now - before[0]))
        state.fell_at = now
    if limit is None or count <= limit:
        state.refusing_since = None
        return None
    if state.refusing_since is None:
        state.refusing_since = now
    # Stalled: refusing for a while, and the count has not fallen in that time.
    stalled = now - max(state.refusing_since, state.fell_at) >= STALL_S
    if stalled:
        retry_after = STALLED_RETRY_AFTER_S
    elif state.fall_rate:
        retry_after = max(1, min(MAX_RETRY_AFTER_S, math.ceil((count - limit) / state.fall_rate)))
    else:  # the writer commits a run every fraction of a second: look again soon
        retry_after = 1
    return Refusal(retry_after, PERSISTENCE_BEHIND, (
        f"{count} orders await Postgres, over the venue's limit of {limit}; "
        f"retry after {retry_after} s"))
