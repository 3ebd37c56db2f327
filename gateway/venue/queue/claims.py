"""How long the gateway remembers a clientOrderId, and where.

A repeat within a day of its first use returns the original order. Claims live in one
hash per account and UTC day; an append checks the day before, its own day and the day
after (so gateways whose clocks disagree by less than a day still see each other's
claims) and writes into its day. A day's hash expires CLAIM_TTL_S after its last claim.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from venue.contract.keys import Keys

DAY_S = 24 * 3600
CLAIM_TTL_S = 3 * DAY_S


def claim_keys(keys: Keys, account_id: int, now: float | None = None) -> list[str]:
    """The account's claim hashes an append reads: the day before, its day, the day
    after (the enqueue script writes into the middle one)."""
    day = int(time.time() if now is None else now) // DAY_S
    return [keys.client_order_ids(account_id, day + offset) for offset in (-1, 0, 1)]


async def claimed_order_id(redis: Redis, keys: Keys, account_id: int,
                           client_order_id: str) -> int | None:
    """The order that holds `client_order_id` of the account, while it is claimed."""
    async with redis.pipeline(transaction=False) as pipe:
        for key in claim_keys(keys, account_id):
            pipe.hget(key, client_order_id)
        found = [value for value in await pipe.execute() if value is not None]
    return int(found[0]) if found else None
