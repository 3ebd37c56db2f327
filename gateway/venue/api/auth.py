"""Who is calling: the account behind an `Authorization: Bearer <key>` header.

Keys resolve through api_keys (by sha256) and are remembered in-process for the key cache
period (VENUE_KEY_CACHE_TTL_S, 30 s by default), so an order costs no database round
trip. The price: a revoked key keeps working on a gateway that saw it for up to that
long. A key is never logged: only its hash and a hint of its first characters are kept.
"""

from __future__ import annotations

import time

import asyncpg

from venue.accounts import account_for_key
from venue.contract.config import Settings

KEY_CACHE_TTL_S = Settings.model_fields["key_cache_ttl_s"].default
# Unknown keys are remembered only briefly: a key created a moment ago must start working.
UNKNOWN_KEY_CACHE_TTL_S = 1.0
KEY_CACHE_MAX_ENTRIES = 100_000


class ApiKeyCache:
    """API key -> account id, with expiry; the database is asked only on a miss."""

    def __init__(self, pool: asyncpg.Pool, ttl_s: float = KEY_CACHE_TTL_S,
                 unknown_ttl_s: float = UNKNOWN_KEY_CACHE_TTL_S,
                 max_entries: int = KEY_CACHE_MAX_ENTRIES) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._unknown_ttl_s = unknown_ttl_s
        self._max_entries = max_entries
        self._entries: dict[str, tuple[int | None, float]] = {}

    def cached(self, key: str) -> int | None:
        """The account of a key this cache knows and holds valid; None otherwise (an
        unknown key, or one to look up again: ask account_for)."""
        entry = self._entries.get(key)
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        return None

    async def account_for(self, key: str) -> int | None:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[1] > now:
            return entry[0]
        account_id = await account_for_key(self._pool, key)
        if len(self._entries) >= self._max_entries:
            # A flood of distinct keys must not grow memory without bound; the valid
            # ones come back on their next request.
            self._entries.clear()
        ttl = self._ttl_s if account_id is not None else self._unknown_ttl_s
        self._entries[key] = (account_id, time.monotonic() + ttl)
        return account_id
