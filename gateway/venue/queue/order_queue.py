"""The gateway's side of the queue: commands appended to their shard's stream, with
their clientOrderId claims, atomically (enqueue.lua), and queued orders read back until
the writer has persisted them.

Until then a queued order is found by its order id through the queued runs (runs of
consecutive ids, each naming its entry), and the venue's unpersisted orders are the
shards' queued counts less their persisted marks: what Redis keeps per order is its
entry, not a record of its own.

Four ways in, one script: enqueue() for single commands (coalesced per shard while an
append is at Redis), enqueue_entry() for a request's commands, enqueue_new_orders() for
a batch request's new orders, and enqueue_encoded() with the script's strings made
already (the batch route's C path).
"""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

from redis.asyncio import Redis

from venue.contract.config import DEFAULT_OPEN_ORDERS_LIMIT, VenueConfig
from venue.contract.entries import (FIELD_COMMANDS, FIELD_QUEUED, FIELD_TRACEPARENT, frame,
                                    split_frames)
from venue.contract.keys import Keys
from venue.contract.wire import with_traceparent
from venue.enginepb import engine_pb2 as pb
from venue.queue.claims import ClaimWindow
from venue.queue.order_ids import OrderIds
from venue.contract.scripts import script


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
    refused: bool = False  # a new order past its account's open-orders limit: not queued


# The enqueue script's answer for a new order it refused at the open-orders limit.
REFUSED = b"!"


class OrderQueue:
    """The gateway's side of the queue: order ids and appends."""

    def __init__(self, redis: Redis, venue: VenueConfig,
                 claims: ClaimWindow | None = None,
                 open_orders_limit: int = DEFAULT_OPEN_ORDERS_LIMIT) -> None:
        self.redis = redis
        self.venue = venue
        self.keys = Keys(venue.name)
        self.claims = claims or ClaimWindow()
        self.open_orders_limit = open_orders_limit
        self._enqueue = redis.register_script(script(
            "venue.queue", "enqueue.lua", FIELD_COMMANDS=FIELD_COMMANDS, FIELD_TRACEPARENT=FIELD_TRACEPARENT,
            FIELD_QUEUED=FIELD_QUEUED))
        self.order_ids = OrderIds(redis, self.keys)
        self._waiting: dict[int, list[tuple[QueuedCommand, bytes, asyncio.Future]]] = {}
        self._sending: set[int] = set()

    async def next_order_ids(self, count: int, shard: int | None = None) -> list[int]:
        return await self.order_ids.take(count, shard)

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
        return await self.claims.claimed_order_id(self.redis, self.keys, account_id,
                                                  client_order_id)

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

        Returns the stream id (None when no order was queued) and per order b"" when it
        was queued, the original order's id when its clientOrderId was taken, or REFUSED
        when it would have taken the account past its open-orders limit.
        """
        coids = " ".join(client_order_ids)
        if " " in "".join(client_order_ids):  # the API's pattern has no spaces
            raise ValueError("a clientOrderId has a space")
        framed = [frame(command) for command in commands]
        return await self.enqueue_encoded(shard, account_id,
                                          (",".join(map(str, order_ids)) + ",").encode(),
                                          (coids + " ").encode(), b"".join(framed),
                                          "".join(f"{len(f)}," for f in framed).encode(),
                                          traceparent)

    async def enqueue_encoded(self, shard: int, account_id: int, order_ids: bytes,
                              client_order_ids: bytes, frames: bytes, sizes: bytes,
                              traceparent: str) -> tuple[str | None, list[bytes]]:
        """enqueue_new_orders with the script's strings made already: `order_ids` each
        followed by ",", `client_order_ids` (which have no spaces) each followed by " ",
        `frames`, each Command framed (contract.entries.frame), and `sizes`, each frame's
        size followed by ","."""
        count = order_ids.count(b",")
        keys = [*self._entry_keys(shard), *self._account_keys(account_id)]
        args = [traceparent.encode(), self.claims.ttl_s, f"1:{count},", order_ids, client_order_ids,
                frames, sizes, shard, self.open_orders_limit]
        answer = await self._enqueue(keys=keys, args=args)
        return answer[0].decode() or None, answer[1:]

    def _entry_keys(self, shard: int) -> list[str]:
        """The enqueue script's KEYS before the accounts'."""
        return [self.keys.orders(shard), self.keys.queued_runs, self.keys.shard_runs(shard),
                self.keys.queued_counts]

    def _account_keys(self, account_id: int, now: float | None = None) -> list[str]:
        """The enqueue script's KEYS of one account: its claim hashes, its open orders."""
        return [*self.claims.keys(self.keys, account_id, now), self.keys.open_orders(account_id)]

    async def _append(self, shard: int, commands: list[QueuedCommand],
                      traceparent: bytes) -> list[Enqueued]:
        keys = self._entry_keys(shard)
        accounts: dict[int, int] = {}  # account id -> its number in KEYS
        now = time.time()
        runs: list[list[int]] = []  # [account number, count]
        ids, coids, frames, sizes = [], [], [], []
        for order_id, command, account_id, client_order_id, pending in commands:
            number = 0
            if account_id is not None:
                number = accounts.get(account_id, 0)
                if not number:
                    number = accounts[account_id] = len(accounts) + 1
                    keys += self._account_keys(account_id, now)
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
            framed = frame(command)
            frames.append(framed)
            sizes.append(f"{len(framed)},")
        args = [traceparent, self.claims.ttl_s, "".join(f"{a}:{n}," for a, n in runs),
                "".join(ids), "".join(coids), b"".join(frames), "".join(sizes), shard,
                self.open_orders_limit]
        answer = await self._enqueue(keys=keys, args=args)
        stream_id = answer[0].decode() or None
        return [Enqueued(c[0], False, None, refused=True) if original == REFUSED
                else Enqueued(int(original), True, None) if original
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
