"""The writer's record of how far each shard is persisted (persist.lua)."""

from __future__ import annotations

from redis.asyncio import Redis

from venue.contract.entries import Mark
from venue.contract.keys import Keys
from venue.contract.scripts import script


class PersistedMarks:
    """Records, in one script call per commit, how far shards are persisted."""

    def __init__(self, redis: Redis, keys: Keys, retain_ms: int) -> None:
        self.keys = keys
        self.retain_ms = retain_ms
        self._script = redis.register_script(script("venue.queue", "persist.lua"))

    async def record(self, pipe, marks: list[Mark]) -> None:
        """Queue the script on `pipe` (a pipeline of the same Redis), for `marks`."""
        if not marks:
            return
        keys = [self.keys.persisted_marks, self.keys.queued_runs]
        args: list = [self.retain_ms]
        for mark in marks:
            keys += [self.keys.shard_runs(mark.shard), self.keys.orders(mark.shard)]
            args += [mark.shard, mark.entry[0], mark.entry[1], mark.queued]
        await self._script(keys=keys, args=args, client=pipe)
