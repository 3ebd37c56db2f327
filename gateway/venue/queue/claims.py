"""How long the gateway remembers a clientOrderId, and where.

A repeat within the dedup window (VENUE_DEDUP_WINDOW_S, spec.gateway.dedupWindow) of a
clientOrderId's first use returns the original order; a repeat later than twice the
window is a new order (in between, it may be either). Claims live in one hash per
account and window-long bucket of time; an append checks the bucket before, its own
bucket and the bucket after (so gateways whose clocks disagree by less than a window
still see each other's claims) and writes into its own. A bucket's hash expires two
windows after its last claim, so at most three buckets of claims are held: Redis keeps
at most 3 x window x the bytes of a claim for each order/s of the rate (CLAIM_BYTES,
measured by tests/integration/test_claims_memory.py).

The window is in the hashes' names: a venue whose window changes starts deduplicating
afresh.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from venue.contract.config import DEFAULT_DEDUP_WINDOW_S
from venue.contract.keys import Keys

# What one claim costs Redis, measured with MEMORY USAGE on claim hashes of 10,000
# 20-character clientOrderIds (tests/integration/test_claims_memory.py holds to it).
CLAIM_BYTES = 100


class ClaimWindow:
    def __init__(self, window_s: int = DEFAULT_DEDUP_WINDOW_S) -> None:
        if window_s < 1:
            raise ValueError(f"the dedup window must be at least 1 s, not {window_s}")
        self.window_s = window_s
        self.ttl_s = 2 * window_s  # the hash outlives its bucket by a window and more

    def keys(self, keys: Keys, account_id: int, now: float | None = None) -> list[str]:
        """The account's claim hashes an append reads: the bucket before, its bucket, the
        bucket after (the enqueue script writes into the middle one)."""
        bucket = int(time.time() if now is None else now) // self.window_s
        return [keys.client_order_ids(account_id, self.window_s, bucket + offset)
                for offset in (-1, 0, 1)]

    async def claimed_order_id(self, redis: Redis, keys: Keys, account_id: int,
                               client_order_id: str) -> int | None:
        """The order that holds `client_order_id` of the account, while it is claimed."""
        async with redis.pipeline(transaction=False) as pipe:
            for key in self.keys(keys, account_id):
                pipe.hget(key, client_order_id)
            found = [value for value in await pipe.execute() if value is not None]
        return int(found[0]) if found else None

    def bound_bytes_per_rate(self) -> int:
        """Redis memory the claims may take for each order/s of the rate."""
        return 3 * self.window_s * CLAIM_BYTES
