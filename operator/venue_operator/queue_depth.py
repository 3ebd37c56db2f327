"""What the operator reads of a venue in its Redis: queue depth, what its parts say of
their own health, and the messages set aside.

Queue depth: the sum of the shards' lags, by the estimate the gateway's backpressure
reads too (venue.contract.lag): order-stream entries the submitters have not confirmed.
An entry is one request's orders for the shard (one for POST /v1/orders, up to a
batch's), and a submitter's work is per entry before it is per order, so that is what
targetQueueDepth counts."""

from __future__ import annotations

from typing import NamedTuple

from redis import Redis
from redis.exceptions import ResponseError
from venue.contract import dead_letters, health
from venue.contract.keys import Keys
from venue.contract.lag import COUNT_AFTER, CountAfter, LagEstimator
from venue.contract.scripts import script

# An operator that cannot reach a venue's Redis must not stall its other venues.
TIMEOUT_S = 2.0
# Counting entries after a confirmed id stops here: the autoscaler needs no more.
COUNT_CAP = 1_000_000


def connect(url: str) -> Redis:
    return Redis.from_url(url, decode_responses=True, socket_timeout=TIMEOUT_S,
                          socket_connect_timeout=TIMEOUT_S)


def queue_depth(redis: Redis, venue: str, estimator: LagEstimator) -> int:
    """Entries queued and not yet confirmed by the engine, over the venue's shards (those
    `estimator` keeps samples of)."""
    keys = Keys(venue)
    shards = list(estimator.shards)
    with redis.pipeline(transaction=False) as pipe:
        for shard in shards:
            pipe.xinfo_stream(keys.orders(shard))
            pipe.xinfo_groups(keys.orders(shard))
        answers = pipe.execute(raise_on_error=False)
    depth = 0
    count_after = redis.register_script(script(*COUNT_AFTER))
    for index, shard in enumerate(shards):
        estimate = estimator.estimate(shard, answers[2 * index], answers[2 * index + 1])
        if isinstance(estimate, CountAfter):
            waiting = count_after(keys=[keys.orders(shard)],
                                  args=[estimate.delivered, COUNT_CAP])
            estimate = estimator.counted(estimate, int(waiting))
        depth += estimate.lag
    return depth


class Reading(NamedTuple):
    depth: int  # queue_depth
    problems: list[health.Problem]  # what stops the venue, by what its parts say
    dead_letters: int  # messages its parts have ever set aside (venue.contract.dead_letters)


def read_venue(redis: Redis, venue: str, partitions: int, estimator: LagEstimator) -> Reading:
    try:
        set_aside = dead_letters.count_of(redis.xinfo_stream(Keys(venue).dead_letters))
    except ResponseError:  # no such stream: nothing set aside yet
        set_aside = 0
    return Reading(queue_depth(redis, venue, estimator),
                   health.verdict(redis.hgetall(Keys(venue).health), partitions),
                   set_aside)
