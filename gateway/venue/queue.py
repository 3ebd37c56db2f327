"""The Redis Streams order queue: key names, entry format, and the enqueue script.

One stream of orders per shard (`tv:<venue>:orders:<shard>`); one stream of engine
events per partition (`tv:<venue>:events:<p>`, each entry one ReportBatch, consumed by
the group `writers`).

An order-stream entry holds the commands of one request for one shard: field `cmds` is
the gateway-encoded engine Commands (bodies only), each preceded by its length as a
protobuf varint, and field `traceparent` the request's W3C trace context. A batch of a
thousand orders is one entry, so Redis and the submitter work per request, not per
order; the submitter splits `cmds` and gives each command its entry's stream id and
its index within the entry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis

from venue.config import VenueConfig
from venue.enginewire import varint, with_traceparent

SUBMITTERS_GROUP = "submitters"
WRITERS_GROUP = "writers"

# Entry fields.
FIELD_COMMANDS = "cmds"
FIELD_TRACEPARENT = "traceparent"
FIELD_BATCH = "batch"

# How long the gateway remembers a clientOrderId, in seconds: the window in which a
# repeated clientOrderId returns the original order.
CLIENT_ORDER_ID_TTL_S = 24 * 3600

ORDER_ID_BLOCK = 4096

# Appends one entry of commands atomically with their clientOrderId claims, so a
# duplicate never reaches the stream and a claim never exists without its order.
# KEYS: stream, pending-orders hash, then one clientOrderId key per command ("" = none).
# ARGV: traceparent, coid ttl, then per command: order id, framed command, pending (0/1).
# Returns the stream id ("" when every command was a duplicate), then per command the
# original order id of a duplicate, or "" for a command that was queued.
_ENQUEUE_SCRIPT = """
local n = #KEYS - 2
local parts, pending, answer = {}, {}, {''}
for i = 1, n do
  local order_id, framed = ARGV[3 * i], ARGV[3 * i + 1]
  local existing = false
  if KEYS[i + 2] ~= '' then
    existing = redis.call('SET', KEYS[i + 2], order_id, 'NX', 'GET', 'EX', ARGV[2])
  end
  if existing then
    answer[i + 1] = existing
  else
    answer[i + 1] = ''
    parts[#parts + 1] = framed
    if ARGV[3 * i + 2] == '1' then
      pending[#pending + 1] = order_id
      pending[#pending + 1] = framed
    end
  end
end
if #parts > 0 then
  answer[1] = redis.call('XADD', KEYS[1], '*', 'cmds', table.concat(parts),
                         'traceparent', ARGV[1])
  -- unpack() is bounded by Lua's C stack: HSET a thousand orders at a time.
  for j = 1, #pending, 2000 do
    redis.call('HSET', KEYS[2], unpack(pending, j, math.min(j + 1999, #pending)))
  end
end
return answer
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

    @property
    def pending_orders(self) -> str:
        """Hash: order id -> framed Command, from queueing until the writer persisted it."""
        return f"{self.prefix}:pending"

    @property
    def order_id_counter(self) -> str:
        return f"{self.prefix}:order-id"


@dataclass(frozen=True)
class QueuedCommand:
    """One command of an entry: its order id, encoded Command, and dedup claim."""

    order_id: int
    command: bytes
    account_id: int | None = None
    client_order_id: str | None = None
    pending: bool = True  # readable as pending_new until persisted (new orders only)


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


def frame(command: bytes) -> bytes:
    return varint(len(command)) + command


def split_frames(data: bytes) -> list[bytes]:
    """The commands of an entry's `cmds` field, in order."""
    commands, at, end = [], 0, len(data)
    while at < end:
        length, shift = 0, 0
        while True:
            byte = data[at]
            at += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        commands.append(data[at:at + length])
        at += length
    return commands


class OrderQueue:
    """The gateway's side of the queue: order ids and appends."""

    def __init__(self, redis: Redis, venue: VenueConfig) -> None:
        self.redis = redis
        self.venue = venue
        self.keys = Keys(venue.name)
        self._enqueue = redis.register_script(_ENQUEUE_SCRIPT)
        self._next_id = 0
        self._last_id = -1
        self._waiting: dict[int, list[tuple[QueuedCommand, bytes, asyncio.Future]]] = {}
        self._sending: set[int] = set()

    async def next_order_ids(self, count: int) -> list[int]:
        """`count` venue-wide unique order ids, reserved from Redis a block at a time."""
        ids: list[int] = []
        while len(ids) < count:
            if self._next_id > self._last_id:
                block = max(ORDER_ID_BLOCK, count - len(ids))
                last = await self.redis.incrby(self.keys.order_id_counter, block)
                self._next_id, self._last_id = last - block + 1, last
            take = min(count - len(ids), self._last_id - self._next_id + 1)
            ids.extend(range(self._next_id, self._next_id + take))
            self._next_id += take
        return ids

    async def next_order_id(self) -> int:
        return (await self.next_order_ids(1))[0]

    async def pending_command(self, order_id: int) -> bytes | None:
        """The encoded Command of an order queued but not yet persisted, if any."""
        framed = await self.redis.hget(self.keys.pending_orders, order_id)
        return split_frames(framed)[0] if framed is not None else None

    async def enqueue_entry(self, shard: int, commands: list[QueuedCommand],
                            traceparent: str) -> list[Enqueued]:
        """Queue `commands` as one entry of `shard`'s stream, in order, atomically.

        Every command carries `traceparent`; so does the entry.
        """
        trace = traceparent.encode()
        return await self._append(shard, [(c, trace) for c in commands])

    async def _append(self, shard: int,
                      commands: list[tuple[QueuedCommand, bytes]]) -> list[Enqueued]:
        keys = [self.keys.orders(shard), self.keys.pending_orders]
        args: list = [commands[0][1], CLIENT_ORDER_ID_TTL_S]
        for c, trace in commands:
            keys.append(self.keys.client_order_id(c.account_id, c.client_order_id)
                        if c.client_order_id is not None and c.account_id is not None else "")
            args += (c.order_id, frame(with_traceparent(c.command, trace)),
                     1 if c.pending else 0)
        answer = await self._enqueue(keys=keys, args=args)
        stream_id = answer[0].decode() or None
        return [Enqueued(order_id=int(original) if original else c.order_id,
                         duplicate=bool(original), stream_id=None if original else stream_id)
                for (c, _), original in zip(commands, answer[1:])]

    async def enqueue(self, *, shard: int, order_id: int, command: bytes, traceparent: str,
                      account_id: int | None = None, client_order_id: str | None = None,
                      pending: bool = True) -> Enqueued:
        """Queue one command, in arrival order on its shard.

        Commands that arrive while the shard's previous append is at Redis go together in
        the next one: an idle gateway appends an order at once, a busy one appends what
        accumulated, and one Redis call serves many requests.
        """
        future = asyncio.get_running_loop().create_future()
        command = QueuedCommand(order_id, command, account_id, client_order_id, pending)
        self._waiting.setdefault(shard, []).append((command, traceparent.encode(), future))
        if shard not in self._sending:
            self._sending.add(shard)
            asyncio.get_running_loop().create_task(self._send(shard))
        return await future

    async def _send(self, shard: int) -> None:
        try:
            while waiting := self._waiting.pop(shard, None):
                try:
                    answers = await self._append(shard, [(c, t) for c, t, _ in waiting])
                except Exception as error:  # each request answers for itself
                    for *_, future in waiting:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (*_, future), answer in zip(waiting, answers):
                    if not future.done():
                        future.set_result(answer)
        finally:
            self._sending.discard(shard)
