"""What the operator reads of a venue in its Redis: queue depth, what its parts say of
their own health, and the messages set aside.

Queue depth: per shard stream, the consumer group `submitters`' lag (entries not yet
delivered, Redis 7's XINFO GROUPS) plus its pending entries (delivered, not yet
acknowledged after the engine confirmed them)."""

from __future__ import annotations

from typing import NamedTuple

from redis import Redis
from redis.exceptions import ResponseError
from venue.contract import dead_letters, health
from venue.contract.keys import Keys, SUBMITTERS_GROUP

# An operator that cannot reach a venue's Redis must not stall its other venues.
TIMEOUT_S = 2.0


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True, socket_timeout=TIMEOUT_S,
                          socket_connect_timeout=TIMEOUT_S)


def shard_depth(redis: Redis, stream: str) -> int:
    try:
        groups = redis.xinfo_groups(stream)
    except ResponseError as error:
        if "no such key" in str(error).lower():
            return 0  # nothing was ever queued on this shard
        raise
    group = next((g for g in groups if g["name"] == SUBMITTERS_GROUP), None)
    if group is None:
        # No submitter has read this shard yet: every entry is waiting.
        return redis.xlen(stream)
    lag = group.get("lag")
    if lag is None:
        # Redis cannot tell the lag after deletions in the stream; bound it from above.
        read = group.get("entries-read")
        length = redis.xlen(stream)
        lag = length - read if read is not None else length
    return max(int(lag), 0) + int(group["pending"])


def queue_depth(redis: Redis, venue: str, shards: int) -> int:
    """Orders queued and not yet confirmed by the engine, over all shards of `venue`."""
    keys = Keys(venue)
    return sum(shard_depth(redis, keys.orders(shard)) for shard in range(shards))


class Reading(NamedTuple):
    depth: int  # queue_depth
    problems: list[health.Problem]  # what stops the venue, by what its parts say
    dead_letters: int  # messages its parts have ever set aside (venue.contract.dead_letters)


def read_venue(redis: Redis, venue: str, shards: int, partitions: int) -> Reading:
    try:
        set_aside = dead_letters.count_of(redis.xinfo_stream(Keys(venue).dead_letters))
    except ResponseError:  # no such stream: nothing set aside yet
        set_aside = 0
    return Reading(queue_depth(redis, venue, shards),
                   health.verdict(redis.hgetall(Keys(venue).health), partitions),
                   set_aside)
