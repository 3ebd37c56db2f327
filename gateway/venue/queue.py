"""The Redis Streams order queue: key names, entry format, and the enqueue script.

One stream of orders per shard (`tv:<venue>:orders:<shard>`); one stream of engine
events per partition (`tv:<venue>:events:<p>`, each entry one ReportBatch, consumed by
the group `writers`).

An order-stream entry holds the commands of one request for one shard: field `cmds` is
the gateway-encoded engine Commands (bodies only), each preceded by its length as a
protobuf varint, and field `traceparent` the request's W3C trace context. A batch of a
thousand orders is one entry, so Redis and the submitter work per request, not per
order; the submitter splits `cmds` and gives each command its entry's traceparent,
stream id and its index within the entry. (Single orders of several requests that
arrive together share one entry; each of those commands carries its own traceparent,
which wins over the entry's.) Field `n` counts the new orders the shard has queued.

Until the writer has persisted them, queued orders are found by their order id through
the queued runs (runs of consecutive ids, each naming its entry), and the venue's
unpersisted orders are the shards' queued counts less their persisted marks: what Redis
keeps per order is its entry, not a record of its own.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import NamedTuple

from redis.asyncio import Redis

from venue.config import VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.enginewire import varint, with_traceparent

SUBMITTERS_GROUP = "submitters"
WRITERS_GROUP = "writers"

# Entry fields.
FIELD_COMMANDS = "cmds"
FIELD_TRACEPARENT = "traceparent"
FIELD_BATCH = "batch"
# An orders-stream entry's count of the new orders its shard has queued, its own included.
FIELD_QUEUED = "n"
# An events entry's marks: per shard, the last orders-stream entry the batch answered,
# and that entry's count (FIELD_QUEUED), as "shard ms-seq count;" each.
FIELD_MARKS = "marks"

# How long the gateway remembers a clientOrderId: a repeat within a day of its first
# use returns the original order. Claims live in one hash per account and UTC day; an
# append checks the day before, its own day and the day after (so gateways whose clocks
# disagree by less than a day still see each other's claims) and writes into its day.
# A day's hash expires CLAIM_TTL_S after its last claim.
DAY_S = 24 * 3600
CLAIM_TTL_S = 3 * DAY_S

ORDER_ID_BLOCK = 4096

# How every Redis the venue starts (local and operator-managed) keeps the queue: in its
# append-only file alone, no RDB snapshots. The file is rewritten when it has grown to
# five times its last rewritten size, not twice (Redis's default): a rewrite forks and
# writes out every claim and queued entry, and under load rewrites were a third of
# Redis's CPU. Their RDB base is written uncompressed, which was a third of each one.
REDIS_PERSISTENCE_ARGS = ("--appendonly", "yes", "--save", "",
                          "--auto-aof-rewrite-percentage", "400", "--rdbcompression", "no")

# Appends one entry of commands atomically with their clientOrderId claims, so a
# duplicate never reaches the stream and a claim never exists without its order.
# KEYS: stream, queued-runs sorted set, the shard's runs list, queued-orders counts, then
#   per account with claims in this append its claim hashes of the day before, the day,
#   and the day after.
# ARGV: traceparent, claim ttl, then four strings covering every command in order:
#   runs of consecutive commands as "account:count," each (account: the n-th account
#   of KEYS, 0 for commands without a claim); per command "order id," for a new order
#   (readable as queued until persisted) or "," for another; per command
#   "clientOrderId " or " " (a clientOrderId has no spaces); the framed commands,
#   concatenated; then the shard.
# Returns the stream id ("" when every command was a duplicate), then per command the
# original order id of a duplicate, or "" for a command that was queued.
# A few strings rather than arguments per command, one HMGET per claim hash and one HSET
# per hash for the whole append, and what makes the queued orders findable is per run
# of consecutive order ids, not per order: commands per order were most of Redis's time.
_ENQUEUE_SCRIPT = """
local CHUNK = 1000  -- unpack() is bounded by Lua's C stack
local byte, sub, gmatch, tonumber = string.byte, string.sub, string.gmatch, tonumber
local frames, shard = ARGV[6], ARGV[7]
local next_id = gmatch(ARGV[4], '([^,]*),')
local next_coid = gmatch(ARGV[5], '([^ ]*) ')
-- Tables filled through counters: Lua's # is a search of the table each time.
local answer, n_answer = {''}, 1
local queued, n_queued = {}, 0  -- the new orders' ids (text), in entry order
local dropped = false
local known, claims, n_claims = {}, {}, {}  -- per account: clientOrderId -> order id; new claims
local function lookup(account, coids, n)
  local found = known[account]
  if found == nil then
    found = {}
    known[account] = found
    claims[account] = {}
    n_claims[account] = 0
  end
  for day = 0, 2 do
    local key = KEYS[3 * account + 2 + day]
    if n > 0 and redis.call('EXISTS', key) == 1 then
      for j = 1, n, CHUNK do
        local last = math.min(j + CHUNK - 1, n)
        local values = redis.call('HMGET', key, unpack(coids, j, last))
        for k = 1, last - j + 1 do
          local value = values[k]
          if value and not found[coids[j + k - 1]] then
            found[coids[j + k - 1]] = value
          end
        end
      end
    end
  end
  return found
end
for account, n in gmatch(ARGV[3], '(%d+):(%d+),') do
  account, n = tonumber(account), tonumber(n)
  local ids, coids = {}, {}
  for i = 1, n do
    ids[i], coids[i] = next_id(), next_coid()
  end
  local found, claim, n_claim = nil, nil, 0
  if account > 0 then
    local wanted, n_wanted = {}, 0
    for i = 1, n do
      if coids[i] ~= '' then
        n_wanted = n_wanted + 1
        wanted[n_wanted] = coids[i]
      end
    end
    found = lookup(account, wanted, n_wanted)
    claim, n_claim = claims[account], n_claims[account]
  end
  for i = 1, n do
    local order_id, coid = ids[i], coids[i]
    local original = false
    if found and coid ~= '' then
      original = found[coid]
      if not original then  -- a repeat later in this append is a duplicate of this one
        found[coid] = order_id
        claim[n_claim + 1], claim[n_claim + 2] = coid, order_id
        n_claim = n_claim + 2
      end
    end
    n_answer = n_answer + 1
    if original then
      answer[n_answer] = original
      dropped = true
    else
      answer[n_answer] = ''
      if order_id ~= '' then
        n_queued = n_queued + 1
        queued[n_queued] = order_id
      end
    end
  end
  if account > 0 then n_claims[account] = n_claim end
end
-- Only when a duplicate is dropped are the frames looked at, to keep the others.
local commands = frames
if dropped then
  local parts, n_parts, at = {}, 0, 1
  for i = 2, n_answer do
    local length, scale, b, start = 0, 1, 0, at
    repeat
      b = byte(frames, at)
      at = at + 1
      length = length + (b % 128) * scale
      scale = scale * 128
    until b < 128
    at = at + length
    if answer[i] == '' then
      n_parts = n_parts + 1
      parts[n_parts] = sub(frames, start, at - 1)
    end
  end
  commands = table.concat(parts)
end
if commands ~= '' then
  -- The entry carries how many orders its shard has queued, itself included: the writer
  -- says how far the shard is persisted by the last entry it has stored.
  local total = redis.call('HINCRBY', KEYS[4], shard, n_queued)
  local entry = redis.call('XADD', KEYS[1], '*', 'cmds', commands, 'traceparent', ARGV[1],
                           'n', total)
  answer[1] = entry
  -- Each run of consecutive order ids, as "first:last:shard:entry", scored by its first.
  local scored, runs, n_runs, first, previous = {}, {}, 0, nil, nil
  for i = 1, n_queued + 1 do
    local id = queued[i] and tonumber(queued[i])
    if first and id ~= previous + 1 then
      n_runs = n_runs + 1
      runs[n_runs] = first .. ':' .. queued[i - 1] .. ':' .. shard .. ':' .. entry
      scored[2 * n_runs - 1], scored[2 * n_runs] = first, runs[n_runs]
      first = nil
    end
    if id and not first then first = queued[i] end
    previous = id
  end
  for j = 1, n_runs, CHUNK do
    local last = math.min(j + CHUNK - 1, n_runs)
    redis.call('ZADD', KEYS[2], unpack(scored, 2 * j - 1, 2 * last))
    redis.call('RPUSH', KEYS[3], unpack(runs, j, last))
  end
end
for account, claim in pairs(claims) do
  local n = n_claims[account]
  if n > 0 then
    local key = KEYS[3 * account + 3]
    for j = 1, n, 2 * CHUNK do
      redis.call('HSET', key, unpack(claim, j, math.min(j + 2 * CHUNK - 1, n)))
    end
    redis.call('EXPIRE', key, ARGV[2])
  end
end
return answer
"""


# Records how far shards are persisted, once the writer has committed it: per shard the
# last orders-stream entry all of whose orders are in Postgres, with its count
# (FIELD_QUEUED). The runs of the entries up to there leave the queued runs, and the
# stream keeps every entry after it, and those before it for ARGV[1] ms.
# KEYS: persisted marks, queued runs, then per shard its runs list and orders stream.
# ARGV: retain ms, then per shard: shard, entry ms, entry seq, count.
_PERSIST_SCRIPT = """
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local retain = tonumber(ARGV[1])
local function after(ms, seq, than_ms, than_seq)
  return ms > than_ms or (ms == than_ms and seq > than_seq)
end
for i = 0, (#KEYS - 2) / 2 - 1 do
  local runs, stream = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local shard, ms_text, seq_text = ARGV[2 + 4 * i], ARGV[3 + 4 * i], ARGV[4 + 4 * i]
  local ms, seq = tonumber(ms_text), tonumber(seq_text)
  local before = redis.call('HGET', KEYS[1], shard)
  local newer = true
  if before then
    local before_ms, before_seq = string.match(before, '^(%d+)%-(%d+) ')
    newer = after(ms, seq, tonumber(before_ms), tonumber(before_seq))
  end
  if newer then
    redis.call('HSET', KEYS[1], shard, ms_text .. '-' .. seq_text .. ' ' .. ARGV[5 + 4 * i])
    while true do
      local run = redis.call('LINDEX', runs, 0)
      if not run then break end
      local run_ms, run_seq = string.match(run, ':(%d+)%-(%d+)$')
      if after(tonumber(run_ms), tonumber(run_seq), ms, seq) then break end
      redis.call('LPOP', runs)
      redis.call('ZREM', KEYS[2], run)
    end
    local keep = math.min(ms, now_ms - retain)
    if keep > 0 then redis.call('XTRIM', stream, 'MINID', '~', keep) end
  end
end
return 0
"""


class Mark(NamedTuple):
    """How far a shard's orders are answered by the engine (in an events entry's marks)
    or persisted (in the persisted marks): through `entry` of its stream, `queued` new
    orders in all."""

    shard: int
    entry: tuple[int, int]
    queued: int


def format_marks(marks: list[Mark]) -> bytes:
    return "".join(f"{m.shard} {m.entry[0]}-{m.entry[1]} {m.queued};" for m in marks).encode()


def parse_marks(data: bytes) -> list[Mark]:
    marks = []
    for part in data.decode().split(";"):
        if part:
            shard, entry, queued = part.split(" ")
            marks.append(Mark(int(shard), parse_stream_id(entry), int(queued)))
    return marks


def unpersisted_orders(queued: dict, persisted: dict) -> int:
    """New orders queued and not yet in Postgres, from HGETALL of the queued counts and
    of the persisted marks."""
    total = 0
    for shard, count in queued.items():
        mark = persisted.get(shard)
        total += max(0, int(count) - (int(mark.split(b" ")[1]) if mark else 0))
    return total


class PersistedMarks:
    """The writer's record of how far each shard is persisted (_PERSIST_SCRIPT)."""

    def __init__(self, redis: Redis, keys: Keys, retain_ms: int) -> None:
        self.keys = keys
        self.retain_ms = retain_ms
        self._script = redis.register_script(_PERSIST_SCRIPT)

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

    def client_order_ids(self, account_id: int, day: int) -> str:
        """Hash: clientOrderId -> order id, the account's claims of one UTC day."""
        return f"{self.prefix}:coids:{account_id}:{day}"

    @property
    def queued_runs(self) -> str:
        """Sorted set: runs of consecutive order ids queued and not yet persisted, as
        "first:last:shard:entry id", scored by the first: where a queued order is read."""
        return f"{self.prefix}:queued-runs"

    def shard_runs(self, shard: int) -> str:
        """List: the queued runs of `shard` in stream order, dropped once persisted."""
        return f"{self.prefix}:queued-runs:{shard}"

    @property
    def queued_counts(self) -> str:
        """Hash: shard -> how many new orders it has ever queued."""
        return f"{self.prefix}:queued"

    @property
    def persisted_marks(self) -> str:
        """Hash: shard -> "entry id count": every order of the shard's entries up to that
        id is in Postgres, `count` of them in all (see PersistedMarks)."""
        return f"{self.prefix}:persisted"

    @property
    def order_id_counter(self) -> str:
        return f"{self.prefix}:order-id"

    @property
    def dead_letters(self) -> str:
        """Stream: messages a part could not process, set aside (venue.dead_letters)."""
        return f"{self.prefix}:dead-letters"

    @property
    def health(self) -> str:
        """Hash: what each part last said of its own health (venue.part_health)."""
        return f"{self.prefix}:health"


class QueuedCommand(NamedTuple):
    """One command of an entry: its order id, encoded Command (with its own traceparent
    when it shares the entry with other requests' commands), and dedup claim. (A tuple:
    a batch makes thousands.)"""

    order_id: int
    command: bytes
    account_id: int | None = None
    client_order_id: str | None = None
    pending: bool = True  # a new order: readable as pending_new until persisted


class Enqueued(NamedTuple):
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
    """The commands of an entry's `cmds` field, in order; ValueError when the framing
    is broken (a length cut short, or past the end)."""
    commands, at, end = [], 0, len(data)
    while at < end:
        length, shift = 0, 0
        while True:
            if at >= end or shift > 35:
                raise ValueError(f"a command's length at byte {at} is cut short")
            byte = data[at]
            at += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        if at + length > end:
            raise ValueError(f"a command of {length} bytes at byte {at} runs past the end "
                             f"({end})")
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
        # Per shard (None: any), the next id of its block and the block's last.
        self._blocks: dict[int | None, list[int]] = {}
        self._waiting: dict[int, list[tuple[QueuedCommand, bytes, asyncio.Future]]] = {}
        self._sending: set[int] = set()

    async def next_order_ids(self, count: int, shard: int | None = None) -> list[int]:
        """`count` venue-wide unique order ids, reserved from Redis a block at a time;
        with `shard`, from a block of that shard's own, so that the orders one gateway
        queues on a shard have consecutive ids (one queued run per entry)."""
        ids: list[int] = []
        block = self._blocks.setdefault(shard, [0, -1])
        while len(ids) < count:
            if block[0] > block[1]:
                size = max(ORDER_ID_BLOCK, count - len(ids))
                last = await self.redis.incrby(self.keys.order_id_counter, size)
                block[:] = [last - size + 1, last]
            take = min(count - len(ids), block[1] - block[0] + 1)
            ids.extend(range(block[0], block[0] + take))
            block[0] += take
        return ids

    async def next_order_id(self, shard: int | None = None) -> int:
        return (await self.next_order_ids(1, shard))[0]

    async def queued_command(self, order_id: int) -> bytes | None:
        """The encoded Command of a new order queued and not yet persisted, if any: found
        through the run of order ids it was queued in, then in that run's entry."""
        runs = await self.redis.zrange(self.keys.queued_runs, order_id, "-inf", desc=True,
                                       byscore=True, offset=0, num=1)
        if not runs:
            return None
        _, last, shard, entry_id = runs[0].decode().split(":")
        if order_id > int(last):
            return None
        entries = await self.redis.xrange(self.keys.orders(int(shard)), entry_id, entry_id)
        if not entries:  # persisted and trimmed meanwhile
            return None
        for command in split_frames(entries[0][1][FIELD_COMMANDS.encode()]):
            decoded = pb.Command.FromString(command)
            if decoded.WhichOneof("body") == "new_order" and decoded.new_order.order_id == order_id:
                return command
        return None

    async def claimed_order_id(self, account_id: int, client_order_id: str) -> int | None:
        """The order that holds `client_order_id` of the account, while it is claimed."""
        day = int(time.time()) // DAY_S
        async with self.redis.pipeline(transaction=False) as pipe:
            for key_day in (day, day - 1, day + 1):
                pipe.hget(self.keys.client_order_ids(account_id, key_day), client_order_id)
            found = [value for value in await pipe.execute() if value is not None]
        return int(found[0]) if found else None

    async def enqueue_entry(self, shard: int, commands: list[QueuedCommand | tuple],
                            traceparent: str) -> list[Enqueued]:
        """Queue `commands` as one entry of `shard`'s stream, in order, atomically.

        `traceparent` is the entry's, which the submitter gives every command that has
        none of its own. A plain tuple in QueuedCommand's field order will do.
        """
        return await self._append(shard, commands, traceparent.encode())

    async def enqueue_new_orders(self, shard: int, account_id: int, order_ids: list[int],
                                 client_order_ids: list[str], commands: list[bytes],
                                 traceparent: str) -> tuple[str | None, list[bytes]]:
        """Queue one account's new orders, each with its clientOrderId claim, as one
        entry of `shard`'s stream: enqueue_entry for a batch request, with the script's
        strings made in a few joins rather than per order.

        Returns the stream id (None when every order was a duplicate) and per order b""
        when it was queued, or the original order's id when its clientOrderId was taken.
        """
        coids = " ".join(client_order_ids)
        if " " in "".join(client_order_ids):  # the API's pattern has no spaces
            raise ValueError("a clientOrderId has a space")
        frames = b"".join([b for command in commands for b in (varint(len(command)), command)])
        return await self.enqueue_encoded(shard, account_id,
                                          (",".join(map(str, order_ids)) + ",").encode(),
                                          (coids + " ").encode(), frames, traceparent)

    async def enqueue_encoded(self, shard: int, account_id: int, order_ids: bytes,
                              client_order_ids: bytes, frames: bytes,
                              traceparent: str) -> tuple[str | None, list[bytes]]:
        """enqueue_new_orders with the script's strings made already: `order_ids` each
        followed by ",", `client_order_ids` (which have no spaces) each followed by " ",
        and `frames`, each Command after its length as a varint."""
        count = order_ids.count(b",")
        day = int(time.time()) // DAY_S
        keys = [*self._entry_keys(shard),
                *(self.keys.client_order_ids(account_id, day + offset) for offset in (-1, 0, 1))]
        args = [traceparent.encode(), CLAIM_TTL_S, f"1:{count},", order_ids, client_order_ids,
                frames, shard]
        answer = await self._enqueue(keys=keys, args=args)
        return answer[0].decode() or None, answer[1:]

    def _entry_keys(self, shard: int) -> list[str]:
        """The enqueue script's KEYS before the claim hashes."""
        return [self.keys.orders(shard), self.keys.queued_runs, self.keys.shard_runs(shard),
                self.keys.queued_counts]

    async def _append(self, shard: int, commands: list[QueuedCommand],
                      traceparent: bytes) -> list[Enqueued]:
        keys = self._entry_keys(shard)
        accounts: dict[int, int] = {}  # account id -> its number in KEYS
        day = int(time.time()) // DAY_S
        runs: list[list[int]] = []  # [account number, count]
        ids, coids, frames = [], [], []
        for order_id, command, account_id, client_order_id, pending in commands:
            number = 0
            if client_order_id is not None and account_id is not None:
                number = accounts.get(account_id, 0)
                if not number:
                    number = accounts[account_id] = len(accounts) + 1
                    keys += [self.keys.client_order_ids(account_id, day + offset)
                             for offset in (-1, 0, 1)]
            if not runs or runs[-1][0] != number:
                runs.append([number, 0])
            runs[-1][1] += 1
            ids.append(f"{order_id}," if pending else ",")
            if client_order_id is None:
                coids.append(" ")
            elif " " in client_order_id:  # the API's pattern has no spaces; never split one
                raise ValueError(f"clientOrderId {client_order_id!r} has a space")
            else:
                coids.append(f"{client_order_id} ")
            frames += (varint(len(command)), command)
        args = [traceparent, CLAIM_TTL_S, "".join(f"{a}:{n}," for a, n in runs),
                "".join(ids), "".join(coids), b"".join(frames), shard]
        answer = await self._enqueue(keys=keys, args=args)
        stream_id = answer[0].decode() or None
        return [Enqueued(int(original), True, None) if original
                else Enqueued(c[0], False, stream_id)
                for c, original in zip(commands, answer[1:])]

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
                # The entry takes the first request's traceparent; a command of another
                # request carries its own.
                trace = waiting[0][1]
                commands = [c if own == trace else c._replace(command=with_traceparent(
                            c.command, own)) for c, own, _ in waiting]
                try:
                    answers = await self._append(shard, commands, trace)
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
