"""Per-account limits, checked in the gateway before anything reaches Redis: orders per
second (a token bucket), open order-entry WebSockets, and the replays of the order
socket's `subscribe` (each gateway process's own: at most one at a time per account and
partition, and a bucket of the events they may read, REPLAY_EVENTS_PER_S with bursts of
REPLAY_EVENTS_BURST, charged what each read once it is done: a replay reads every event
of the partition since its fromSequence, about 8 us of the gateway's CPU each, and
`subscribe` from 1 over and over took a core). (The third, open orders, is
counted venue-wide where orders are queued, by venue.queue.order_queue's script: its
refusal is worded here.)

Each gateway process enforces its share of the venue's limit: the operator gives each
gateway pod the spec's limit divided by the replicas (spec.gateway.accountLimits), and a
pod divides it by its workers, so an account never gets more than the limit in all, and
gets all of it when its requests are spread across the processes, as a load balancer
spreads them. A refused request is answered 429 with Retry-After and reason
`account_rate` or `account_connections`, and nothing of it is queued.
"""

from __future__ import annotations

import math
import time

from venue.api.backpressure import Refusal

ACCOUNT_RATE = "account_rate"
ACCOUNT_CONNECTIONS = "account_connections"
ACCOUNT_OPEN_ORDERS = "account_open_orders"
ACCOUNT_REPLAYS = "account_replays"
REPLAY_IN_PROGRESS = "replay_in_progress"
REPLAY_EVENTS_PER_S = 20_000.0
REPLAY_EVENTS_BURST = 2_000_000.0  # 40 s of a partition at 50,000 events/s
# An account at its open-orders limit may try again this soon: its orders close as they
# fill or as it cancels them, which the venue cannot foresee.
_OPEN_ORDERS_RETRY_S = 1
# Buckets of accounts idle this long are full again and forgotten (bounded memory).
_FORGET_AFTER_S = 60.0


class AccountLimits:
    def __init__(self, orders_per_s: float, burst: float, connections: int) -> None:
        self.rate = orders_per_s
        self.burst = max(burst, 1.0)
        # A bucket idle this long is full again: forgetting it changes nothing.
        self._forget_after_s = max(_FORGET_AFTER_S, self.burst / orders_per_s if orders_per_s else 0)
        self.connections = connections
        self._buckets: dict[int, tuple[float, float]] = {}  # account -> (tokens, when)
        self._sockets: dict[int, int] = {}
        self._swept = time.monotonic()
        self._replay_tokens: dict[int, tuple[float, float]] = {}  # account -> (events, when)
        self._replaying: set[tuple[int, int]] = set()  # (account, partition)

    @classmethod
    def share(cls, orders_per_s: float, burst: float, connections: int,
              processes: int) -> AccountLimits:
        """This process's share of a limit the pod enforces with `processes` workers."""
        processes = max(processes, 1)
        return cls(orders_per_s / processes, burst / processes,
                   max(1, connections // processes))

    def orders(self, account_id: int, count: int, now: float | None = None) -> Refusal | None:
        """Take `count` orders from the account's bucket, or say when they would fit."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.get(account_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if count <= tokens:
            self._buckets[account_id] = (tokens - count, now)
            self._sweep(now)
            return None
        self._buckets[account_id] = (tokens, now)
        wait = math.ceil((count - tokens) / self.rate) if self.rate else 1
        return Refusal(max(1, wait), ACCOUNT_RATE,
                       f"this account is over its {self.rate:g} orders/s here: nothing was "
                       "queued; retry after Retry-After seconds")

    @property
    def most_at_once(self) -> int:
        """The most orders one request may carry: more could never pass the bucket (a
        batch's size is refused past it, venue.api.routes.batch)."""
        return int(self.burst)

    def open_socket(self, account_id: int) -> Refusal | None:
        """Count a new order-entry WebSocket of the account, or refuse it."""
        open_now = self._sockets.get(account_id, 0)
        if open_now >= self.connections:
            return Refusal(5, ACCOUNT_CONNECTIONS,
                           f"this account has {open_now} order-entry WebSockets open here, "
                           f"its limit: close one first")
        self._sockets[account_id] = open_now + 1
        return None

    def close_socket(self, account_id: int) -> None:
        left = self._sockets.get(account_id, 0) - 1
        if left > 0:
            self._sockets[account_id] = left
        else:
            self._sockets.pop(account_id, None)

    def start_replay(self, account_id: int, partition: int,
                     now: float | None = None) -> Refusal | None:
        """Count a replay of the account's reports of `partition` as begun, or refuse it:
        one of the account's is under way there, or its replays read more than their
        bucket holds."""
        if (account_id, partition) in self._replaying:
            return Refusal(1, REPLAY_IN_PROGRESS, f"partition {partition} is being replayed "
                                                  "for this account already")
        tokens = self._replay_events(account_id, now)
        if tokens < 0:
            return Refusal(math.ceil(-tokens / REPLAY_EVENTS_PER_S), ACCOUNT_REPLAYS,
                           f"this account's replays read over {REPLAY_EVENTS_PER_S:g} events "
                           "a second of the partitions here: retry after retryAfter seconds")
        self._replaying.add((account_id, partition))
        return None

    def end_replay(self, account_id: int, partition: int, events: int,
                   now: float | None = None) -> None:
        """A replay begun is done, having read `events`: charged to the account."""
        self._replaying.discard((account_id, partition))
        now = time.monotonic() if now is None else now
        self._replay_tokens[account_id] = (self._replay_events(account_id, now) - events, now)

    def _replay_events(self, account_id: int, now: float | None) -> float:
        now = time.monotonic() if now is None else now
        tokens, then = self._replay_tokens.get(account_id, (REPLAY_EVENTS_BURST, now))
        tokens = min(REPLAY_EVENTS_BURST, tokens + (now - then) * REPLAY_EVENTS_PER_S)
        if tokens >= REPLAY_EVENTS_BURST:
            self._replay_tokens.pop(account_id, None)  # full: nothing to remember
        return tokens

    def _sweep(self, now: float) -> None:
        if now - self._swept < self._forget_after_s:
            return
        self._swept = now
        idle = [a for a, (_, then) in self._buckets.items()
                if now - then > self._forget_after_s]
        for account_id in idle:
            del self._buckets[account_id]


def open_orders_refusal(limit: int) -> Refusal:
    return Refusal(_OPEN_ORDERS_RETRY_S, ACCOUNT_OPEN_ORDERS,
                   f"this account has {limit} orders open or queued, its limit: nothing was "
                   "queued; cancel some, or retry once some have filled")
