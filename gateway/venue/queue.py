"""The Redis Streams order queue: key names, entry fields, and the enqueue script.

One stream of orders per shard (`tv:<venue>:orders:<shard>`), consumed by the group
`submitters`; one stream of engine events per partition (`tv:<venue>:events:<p>`),
each entry one ReportBatch, consumed by the group `writers`.

An order entry holds the gateway-encoded engine Command (body only) and the request's
W3C traceparent; the submitter appends shard and stream id to those bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from venue.config import VenueConfig

SUBMITTERS_GROUP = "submitters"
WRITERS_GROUP = "writers"

# Entry fields (bytes keys as redis-py returns them).
FIELD_COMMAND = "cmd"
FIELD_TRACEPARENT = "traceparent"
FIELD_BATCH = "batch"
FIELD_FIRST_SEQUENCE = "first"
FIELD_LAST_SEQUENCE = "last"

# How long the gateway remembers a clientOrderId and a pending order, in seconds.
CLIENT_ORDER_ID_TTL_S = 7 * 24 * 3600
PENDING_ORDER_TTL_S = 24 * 3600

ORDER_ID_BLOCK = 1024

# Appends one order atomically with its clientOrderId claim, so a duplicate never
# reaches the stream and a claim never exists without its order.
# KEYS: stream, clientOrderId key ("" for cancel/replace), pending-order key.
# ARGV: order id, command bytes, traceparent, coid ttl, pending ttl.
# Returns {order id, 1 if it was a duplicate else 0, stream id}.
_ENQUEUE_SCRIPT = """
if KEYS[2] ~= '' then
  local existing = redis.call('GET', KEYS[2])
  if existing then return {existing, 1, ''} end
end
local id = redis.call('XADD', KEYS[1], '*', 'cmd', ARGV[2], 'traceparent', ARGV[3])
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4]) end
if KEYS[3] ~= '' then redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[5]) end
return {ARGV[1], 0, id}
"""


@dataclass(frozen=True)
class Keys:
    """Every Redis key of one venue."""

    venue: str

    @property
    def prefix(self) -> str:
        return f"tv:{self.venue}"

    def orders(self, shard: int) -> str:
        return f"{self.prefix}:orders:{shard}"

    def events(self, partition: int) -> str:
        return f"{self.prefix}:events:{partition}"

    def lease(self, shard: int) -> str:
        return f"{self.prefix}:lease:{shard}"

    def client_order_id(self, account_id: int, client_order_id: str) -> str:
        return f"{self.prefix}:coid:{account_id}:{client_order_id}"

    def pending_order(self, order_id: int) -> str:
        return f"{self.prefix}:order:{order_id}"

    @property
    def order_id_counter(self) -> str:
        return f"{self.prefix}:order-id"


@dataclass(frozen=True)
class Enqueued:
    order_id: int
    duplicate: bool
    stream_id: str | None


def parse_stream_id(stream_id: bytes | str) -> tuple[int, int]:
    """A Redis stream id "ms-seq" as two integers."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq)


class OrderQueue:
    """The gateway's side of the queue: order ids and appends."""

    def __init__(self, redis: Redis, venue: VenueConfig) -> None:
        self.redis = redis
        self.venue = venue
        self.keys = Keys(venue.name)
        self._enqueue = redis.register_script(_ENQUEUE_SCRIPT)
        self._next_id = 0
        self._last_id = -1

    async def next_order_id(self) -> int:
        """A venue-wide unique order id, reserved from Redis a block at a time."""
        if self._next_id > self._last_id:
            last = await self.redis.incrby(self.keys.order_id_counter, ORDER_ID_BLOCK)
            self._next_id, self._last_id = last - ORDER_ID_BLOCK + 1, last
        order_id = self._next_id
        self._next_id += 1
        return order_id

    async def pending_command(self, order_id: int) -> bytes | None:
        """The encoded Command of an order queued but not yet persisted, if any."""
        return await self.redis.get(self.keys.pending_order(order_id))

    async def enqueue(self, *, shard: int, order_id: int, command: bytes, traceparent: str,
                      account_id: int | None = None, client_order_id: str | None = None,
                      pending: bool = True) -> Enqueued:
        coid_key = (self.keys.client_order_id(account_id, client_order_id)
                    if client_order_id is not None and account_id is not None else "")
        pending_key = self.keys.pending_order(order_id) if pending else ""
        found, duplicate, stream_id = await self._enqueue(
            keys=[self.keys.orders(shard), coid_key, pending_key],
            args=[order_id, command, traceparent, CLIENT_ORDER_ID_TTL_S, PENDING_ORDER_TTL_S],
        )
        return Enqueued(order_id=int(found), duplicate=bool(duplicate),
                        stream_id=(stream_id.decode() if stream_id else None))
