"""Order entry, the one way in for every channel (POST /v1/orders and its fast lane,
the batch route, PATCH and DELETE /v1/orders, the WebSocket): a request checked by
venue.api.order_rules in, a queued engine command out.

New orders, cancels and replaces all go to the stream of the order's shard, so a
cancel or replace is applied after its order, never before. What breaks a rule is
raised as RequestRejected, what loses to backpressure as ShardBusy, an order not found
or closed as OrderNotFound or OrderClosed: nothing is queued for any of them, and each
channel words them. The caller counts what it rejects; this module counts what it
queues.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import NamedTuple

import asyncpg
import msgspec

from venue import _orderwire as orderwire
from venue.api.request_spans import request_spans
from venue.api.commands import decode_new_order, encode_cancel, encode_new_order
from venue.api.commands import encode_replace
from venue.api.models import OrderChangeAccepted, OrderType
from venue.api.order_rules import (CheckedOrder, OrderRef, RequestRejected, Terms,
                                   problem_errors)
from venue.api.backpressure import Refusal
from venue.api.limits import AccountLimits, open_orders_refusal
from venue.api.shard_lag import ShardLag
from venue.contract.wire import CLOSED_STATUSES, ORDER_TYPE_WORDS
from venue.contract.instruments import Instrument, Problem
from venue.metrics import CHANNEL_BATCH, CHANNEL_HTTP, CHANNEL_WS, ORDER_CHANGES
from venue.metrics import ORDERS_ACCEPTED, ORDERS_DUPLICATE
from venue.queue.order_queue import REFUSED, Enqueued, OrderQueue

_KNOWN_COLUMNS = ("order_id, client_order_id, instrument_id, type, status, price, quantity, "
                  "cum_qty")
_BY_ORDER_ID = f"SELECT {_KNOWN_COLUMNS} FROM orders WHERE order_id = $1 AND account_id = $2"
# A clientOrderId may be used again once its claim expired: the newest order holds it.
_BY_CLIENT_ORDER_ID = (f"SELECT {_KNOWN_COLUMNS} FROM orders WHERE account_id = $1 "
                       "AND client_order_id = $2 ORDER BY order_id DESC LIMIT 1")

# Counter children resolved once: labels() takes a lock and a dict lookup per call.
_CHANNELS = (CHANNEL_HTTP, CHANNEL_BATCH, CHANNEL_WS)
_ACCEPTED = {c: ORDERS_ACCEPTED.labels(channel=c) for c in _CHANNELS}
_DUPLICATE = {c: ORDERS_DUPLICATE.labels(channel=c) for c in _CHANNELS}


class ShardBusy(Exception):
    """Backpressure: the order's shard is over its lag limit, or the venue has too many
    orders not yet in Postgres. Nothing was queued."""

    def __init__(self, shard: int, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.shard = shard
        self.retry_after = refusal.retry_after
        self.reason = refusal.reason


class AccountLimited(ShardBusy):
    """The account is over one of its limits (venue.api.limits). Nothing was queued."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(None, refusal)  # type: ignore[arg-type]


def _batch_queued(order_id: int, client_order_id: str, original: bytes) -> BatchQueued:
    """A batch order's fate from the enqueue script's answer for it."""
    if original == REFUSED:
        return BatchQueued(order_id, client_order_id, False, refused=True)
    return BatchQueued(int(original) if original else order_id, client_order_id,
                       bool(original))


def _count_batch(queued) -> None:
    queued = list(queued)
    duplicates = sum(q.duplicate for q in queued)
    _ACCEPTED[CHANNEL_BATCH].inc(sum(not q.refused for q in queued) - duplicates)
    _DUPLICATE[CHANNEL_BATCH].inc(duplicates)


class OrderNotFound(Exception):
    """No such order for this account (another account's order reads the same)."""

    reason = "unknown_order"  # as the engine's REJECT_REASON_UNKNOWN_ORDER

    def __init__(self, reference: str) -> None:
        super().__init__(f"order {reference} not found")


# Why a cancel or replace was refused at the gateway, in the engine's words
# (REJECT_REASON_* of engine.proto) where it has them.
TOO_LATE_TO_CANCEL = "too_late_to_cancel"
NOT_REPLACEABLE = "unsupported"


class OrderClosed(Exception):
    """The order is done (or cannot change): nothing was queued. As the engine's
    cancel-reject says it: the order's real status and why."""

    def __init__(self, order_id: int, client_order_id: str, status: str, reason: str,
                 why: str) -> None:
        super().__init__(f"order {order_id} {why}")
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.status = status
        self.reason = reason

    @classmethod
    def of(cls, order: KnownOrder, reason: str, why: str) -> OrderClosed:
        return cls(order.order_id, order.client_order_id, order.status, reason, why)


class BatchQueued(NamedTuple):
    """One order of a batch as queued: its id (the original's when a duplicate), or
    refused at the account's open-orders limit (not queued)."""

    order_id: int
    client_order_id: str
    duplicate: bool
    refused: bool = False


@dataclass(frozen=True)
class KnownOrder:
    """What the gateway knows of an order it is asked to change: its last reported
    state, or its queued NewOrder while the engine has not reported on it."""

    order_id: int
    client_order_id: str
    instrument: Instrument
    type: str
    status: str
    price: int
    quantity: int
    cum_qty: int


class OrderEntry:
    def __init__(self, queue: OrderQueue, db: asyncpg.Pool, shard_lag: ShardLag,
                 limits: AccountLimits) -> None:
        self.queue = queue
        self.venue = queue.venue
        self.db = db
        self.shard_lag = shard_lag
        self.limits = limits

    async def submit(self, checked: CheckedOrder, account_id: int, traceparent: str,
                     channel: str = CHANNEL_HTTP) -> tuple[Enqueued, str]:
        """Queue a new order that passed its checks; raises ShardBusy, queueing nothing.
        Returns what was queued (or the original order) and the order's clientOrderId."""
        order, instrument, price_ticks, quantity_lots = checked
        shard = self.venue.shard_of(instrument)
        refusal = self.shard_lag.shard_refusal(shard)
        if refusal is not None:
            raise ShardBusy(shard, refusal)
        refusal = self.limits.orders(account_id, 1)
        if refusal is not None:
            raise AccountLimited(refusal)
        order_id = await self.queue.next_order_id(shard)
        client_order_id = order.client_order_id or str(order_id)
        command = encode_new_order(order, order_id=order_id, client_order_id=client_order_id,
                                   account_id=account_id, instrument_id=instrument.id,
                                   price_ticks=price_ticks, quantity_lots=quantity_lots)
        with request_spans(traceparent, channel, self.queue.keys.orders(shard)) as spans:
            enqueued = await self.queue.enqueue(
                shard=shard, order_id=order_id, command=command,
                traceparent=spans.entry_traceparent, account_id=account_id,
                client_order_id=order.client_order_id)
            spans.queued(order_id=enqueued.order_id, client_order_id=client_order_id,
                         duplicate=enqueued.duplicate)
        if enqueued.refused:
            raise AccountLimited(open_orders_refusal(self.queue.open_orders_limit))
        (_DUPLICATE if enqueued.duplicate else _ACCEPTED)[channel].inc()
        return enqueued, client_order_id

    async def submit_batch(self, by_shard: dict[int, list[tuple[int, CheckedOrder]]],
                           account_id: int, traceparent: str) -> dict[int, BatchQueued]:
        """Queue a batch's checked orders, each shard's as one stream entry in the order
        given, whose shards take orders (the caller asked shard_lag); per batch index,
        what was queued (or the original order, a duplicate)."""
        count = sum(len(orders) for orders in by_shard.values())
        order_ids = iter(await self.queue.next_order_ids(count)) if count else iter(())
        queued: dict[int, BatchQueued] = {}

        async def queue_shard(shard: int, orders: list[tuple[int, CheckedOrder]]) -> None:
            ids = [next(order_ids) for _ in orders]
            coids = [checked.order.client_order_id or str(order_id)
                     for order_id, (_, checked) in zip(ids, orders)]
            commands = [encode_new_order(
                checked.order, order_id=order_id, client_order_id=coid, account_id=account_id,
                instrument_id=checked.instrument.id, price_ticks=checked.price_ticks,
                quantity_lots=checked.quantity_lots)
                for order_id, coid, (_, checked) in zip(ids, coids, orders)]
            with request_spans(traceparent, CHANNEL_BATCH,
                               self.queue.keys.orders(shard)) as spans:
                spans.queued(count=len(orders))
                if all(checked.order.client_order_id is not None for _, checked in orders):
                    _, originals = await self.queue.enqueue_new_orders(
                        shard, account_id, ids, coids, commands, spans.entry_traceparent)
                else:  # orders without a clientOrderId claim none
                    answers = await self.queue.enqueue_entry(shard, [
                        (order_id, command, account_id, checked.order.client_order_id, True)
                        for order_id, command, (_, checked) in zip(ids, commands, orders)],
                        spans.entry_traceparent)
                    originals = [REFUSED if a.refused else str(a.order_id).encode()
                                 if a.duplicate else b"" for a in answers]
            for (index, _), order_id, coid, original in zip(orders, ids, coids, originals):
                queued[index] = _batch_queued(order_id, coid, original)

        await asyncio.gather(*(queue_shard(shard, orders) for shard, orders in by_shard.items()))
        _count_batch(queued.values())
        return queued

    async def submit_scanned(self, table: object, body: bytes, count: int, plan: bytes,
                             shards: list[int], account_id: int, traceparent: str
                             ) -> bytes | dict[int, BatchQueued]:
        """Queue a batch venue._orderwire decoded and checked, one entry per shard, and
        write its answer, all without a Python object per order; or, when some of its
        orders were refused at the account's open-orders limit (which C does not word),
        what submit_batch returns, for the caller to answer."""
        ids = await self.queue.next_order_ids(count)
        groups = orderwire.encode(table, body, plan, ids, account_id, shards)

        async def enqueue(shard: int, order_ids, coids, frames, sizes):
            with request_spans(traceparent, CHANNEL_BATCH,
                               self.queue.keys.orders(shard)) as spans:
                spans.queued(count=len(frames))
                return await self.queue.enqueue_encoded(shard, account_id, order_ids, coids,
                                                        frames, sizes, spans.entry_traceparent)
        answers = await asyncio.gather(*(
            enqueue(shard, order_ids, coids, frames, sizes)
            for shard, (order_ids, coids, frames, sizes) in zip(shards, groups)))
        originals = [found for _, found in answers]
        if any(REFUSED in found for found in originals):
            return self._scanned_as_queued(body, shards, groups, originals)
        duplicates = sum(1 for found in originals for original in found if original)
        _ACCEPTED[CHANNEL_BATCH].inc(count - duplicates)
        _DUPLICATE[CHANNEL_BATCH].inc(duplicates)
        return orderwire.answer(table, body, plan, ids, shards, originals)

    def _scanned_as_queued(self, body: bytes, shards: list[int], groups: list,
                           originals: list[list[bytes]]) -> dict[int, BatchQueued]:
        """submit_scanned's batch as submit_batch answers it: each order's shard found by
        its symbol again, and its id, clientOrderId and fate at its place in its shard's
        group (groups and originals hold a shard's orders in batch order)."""
        group_of = {shard: g for g, shard in enumerate(shards)}
        taken = [0] * len(shards)
        ids = [order_ids.split(b",") for order_ids, *_ in groups]
        coids = [client_order_ids.decode().split(" ") for _, client_order_ids, *_ in groups]
        queued: dict[int, BatchQueued] = {}
        for index, order in enumerate(msgspec.json.decode(body)["orders"]):
            g = group_of[self.venue.shard_of(self.venue.by_symbol[order["symbol"]])]
            at, taken[g] = taken[g], taken[g] + 1
            queued[index] = _batch_queued(int(ids[g][at]), coids[g][at], originals[g][at])
        _count_batch(queued.values())
        return queued

    async def cancel(self, ref: OrderRef, account_id: int, traceparent: str,
                     channel: str = CHANNEL_HTTP) -> OrderChangeAccepted:
        """Queue a cancel behind the order; raises OrderNotFound or OrderClosed."""
        order = await self.find(ref, account_id)
        if order.status in CLOSED_STATUSES:
            raise OrderClosed.of(order, TOO_LATE_TO_CANCEL, f"is {order.status}; nothing to cancel")
        command = encode_cancel(order_id=order.order_id, account_id=account_id,
                                instrument_id=order.instrument.id)
        await self._queue_change(order, command, traceparent)
        ORDER_CHANGES.labels(channel=channel, kind="cancel").inc()
        return OrderChangeAccepted(order_id=str(order.order_id),
                                   client_order_id=order.client_order_id,
                                   status="pending_cancel")

    async def replace(self, ref: OrderRef, change: Terms, account_id: int,
                      traceparent: str, channel: str = CHANNEL_HTTP) -> OrderChangeAccepted:
        """Queue a replace behind the order; raises OrderNotFound, OrderClosed, or
        RequestRejected naming the field (checked as a new order's would be)."""
        order = await self.find(ref, account_id)
        if order.status in CLOSED_STATUSES:
            raise OrderClosed.of(order, TOO_LATE_TO_CANCEL,
                                 f"is {order.status}; nothing to replace")
        if order.type != OrderType.LIMIT:
            raise OrderClosed.of(order, NOT_REPLACEABLE, f"is a {order.type} order; only a "
                                                         "limit order can be replaced")
        price_ticks, quantity_lots = self._new_terms(order, change)
        command = encode_replace(order_id=order.order_id, account_id=account_id,
                                 instrument_id=order.instrument.id, price_ticks=price_ticks,
                                 quantity_lots=quantity_lots)
        await self._queue_change(order, command, traceparent)
        ORDER_CHANGES.labels(channel=channel, kind="replace").inc()
        return OrderChangeAccepted(order_id=str(order.order_id),
                                   client_order_id=order.client_order_id,
                                   status="pending_replace")

    async def find(self, ref: OrderRef, account_id: int) -> KnownOrder:
        """The account's order named by `ref`: Postgres first, then the queued order.

        A clientOrderId names the order that claims it, while one does: given again
        after the dedup window it is a new order's, which may be queued while Postgres
        has only the old one of that id (a cancel by it cancelled the old order)."""
        named = ref
        if ref.order_id is None:
            claimed = await self.queue.claimed_order_id(account_id, ref.client_order_id)
            if claimed is not None:
                named = OrderRef(claimed, ref.client_order_id)
        known = await self._reported(named, account_id)
        if known is not None:
            return known
        known = await self._queued(named, account_id)
        if known is not None:
            return known
        # The writer may have persisted it between the two looks (and dropped it from
        # the queued runs): one more look at Postgres settles it.
        known = await self._reported(named, account_id)
        if known is None:
            raise OrderNotFound(str(ref))
        return known

    def _new_terms(self, order: KnownOrder, change: Terms) -> tuple[int, int]:
        """The replace's price and quantity on the grid, 0 for a term it leaves as it is.
        The engine keeps that one as it holds it: the gateway's copy may predate an
        earlier replace still on its way, which filling it in from here would undo."""
        instrument = order.instrument
        price = change.price if change.price is not None else instrument.price_text(order.price)
        quantity = (change.quantity if change.quantity is not None
                    else instrument.quantity_text(order.quantity))
        price_ticks, quantity_lots, problems = instrument.order_terms(price, quantity)
        if not problems and change.quantity is not None and quantity_lots <= order.cum_qty:
            problems.append(Problem(
                "quantity", "replace_below_filled",
                f"quantity {quantity} must stay above the "
                f"{instrument.quantity_text(order.cum_qty)} already filled"))
        if problems:
            raise RequestRejected(problem_errors(problems, {"price": change.price,
                                                            "quantity": change.quantity}))
        return (price_ticks if change.price is not None else 0,
                quantity_lots if change.quantity is not None else 0)

    async def _queue_change(self, order: KnownOrder, command: bytes, traceparent: str) -> None:
        # The order's own shard stream, not a pending order: it must follow its order.
        await self.queue.enqueue(shard=self.venue.shard_of(order.instrument),
                                 order_id=order.order_id, command=command,
                                 traceparent=traceparent, pending=False)

    async def _reported(self, ref: OrderRef, account_id: int) -> KnownOrder | None:
        if ref.order_id is not None:
            row = await self.db.fetchrow(_BY_ORDER_ID, ref.order_id, account_id)
        else:
            row = await self.db.fetchrow(_BY_CLIENT_ORDER_ID, account_id, ref.client_order_id)
        if row is None:
            return None
        instrument = self.venue.by_id.get(row["instrument_id"])
        if instrument is None:  # an instrument the venue no longer lists cannot trade
            raise OrderClosed(row["order_id"], row["client_order_id"], row["status"],
                              "unknown_instrument",
                              "is on an instrument this venue no longer lists")
        return KnownOrder(order_id=row["order_id"], client_order_id=row["client_order_id"],
                          instrument=instrument, type=row["type"], status=row["status"],
                          price=row["price"], quantity=row["quantity"], cum_qty=row["cum_qty"])

    async def _queued(self, ref: OrderRef, account_id: int) -> KnownOrder | None:
        order_id = ref.order_id
        if order_id is None:
            claimed = await self.queue.claimed_order_id(account_id, ref.client_order_id)
            if claimed is not None:
                order_id = claimed
            elif ref.client_order_id.isdigit():  # no clientOrderId given: the order id
                order_id = int(ref.client_order_id)
            else:
                return None
        command = await self.queue.queued_command(order_id)
        new_order = decode_new_order(command) if command is not None else None
        if new_order is None or new_order.account_id != account_id:
            return None
        if ref.client_order_id is not None and new_order.client_order_id != ref.client_order_id:
            return None
        instrument = self.venue.by_id.get(new_order.instrument_id)
        if instrument is None:
            return None
        return KnownOrder(order_id=order_id, client_order_id=new_order.client_order_id,
                          instrument=instrument, type=ORDER_TYPE_WORDS[new_order.type],
                          status="pending_new", price=new_order.price,
                          quantity=new_order.quantity, cum_qty=0)
