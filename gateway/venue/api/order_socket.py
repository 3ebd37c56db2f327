"""One order-entry WebSocket: orders, cancels and replaces in; acks, rejects and the
account's execution reports out.

Messages in (JSON text):
  {"type": "auth", "key": "tv_..."}            first, unless the upgrade carried
                                                Authorization: Bearer <key>
  {"type": "new", ...POST /v1/orders fields...}  an order's own type as "orderType"
  {"type": "cancel", "orderId" | "clientOrderId"}
  {"type": "replace", "orderId" | "clientOrderId", "price"?, "quantity"?}
  {"type": "subscribe", "partition": p, "fromSequence": n}
Any message may carry "requestId" (echoed in its answer) and "traceparent".

Messages out: {"type": "authenticated"}, {"type": "ack", ...}, {"type": "reject",
"field", "reason", "message"}, {"type": "report", "partition", "sequence", ...},
{"type": "subscribed", "partition", "fromSequence"}.

Reports of a partition reach a socket once each and in sequence order: the socket keeps
the last sequence it delivered per partition. A subscribe replays the account's reports
from fromSequence through the engine while live ones wait, then lets the live ones
through, so the switch neither skips nor repeats one.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from typing import Any

import asyncpg
import msgspec
from fastapi import WebSocket, WebSocketDisconnect, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from redis.exceptions import OutOfMemoryError, RedisError

from venue.api.auth import ApiKeyCache
from venue.api.engines import EngineUnavailable
from venue.api.http_protocol import hand_over
from venue.api.error_handlers import queue_refusal
from venue.api.models import Accepted
from venue.api.order_entry import OrderClosed, OrderEntry, OrderNotFound, ShardBusy
from venue.api.order_rules import (DECODE_ERRORS, CheckedOrder, Error, OrderRef, RequestRejected,
                                   Terms, decode_json, echoed, new_order, not_json,
                                   order_ref, replace_terms, unknown_field_errors)
from venue.api.order_rules import error as an_error
from venue.api.report_feed import ReportFeed
from venue.api.websocket_io import Outbox, received_texts
from venue.api.reports import report_message
from venue.api.trace_context import traceparent_of
from venue.enginepb import engine_pb2 as pb
from venue.market.socket import TRANSPORT
from venue.metrics import CHANNEL_WS, ORDERS_REJECTED, WS_CONNECTIONS, WS_REPORTS_SENT
from venue.metrics import WS_SLOW_CONSUMERS

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
# A message's "type" says what the message is: a new order's type (limit, market) is
# given as this.
ORDER_TYPE = "orderType"
# Messages waiting for a socket that does not read: past this it is closed (1013) and
# resumes with subscribe, rather than holding the process's memory.
OUTBOX_LIMIT = 10_000
OUTBOX_BYTES = 4 << 20  # and at most this much of them (an error can be kilobytes)
_encode = msgspec.json.Encoder().encode


class SubscribeMessage(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid")

    # Strict: JSON integers only (true, "0" and 0.0 are not partition 0 or 1).
    partition: int = Field(ge=0, strict=True)
    from_sequence: int = Field(ge=1, le=2**64 - 1, strict=True)  # the engine's: uint64


_SUBSCRIBE_FIELDS = frozenset(info.alias for info in SubscribeMessage.model_fields.values())


class Reject(Exception):
    """A message refused, nothing queued: its errors as every channel words them
    (venue.api.order_rules), loc relative to the message; the first one's field, type and
    msg again as field, reason and message."""

    def __init__(self, errors: list[Error], **extra: Any) -> None:
        first = errors[0]
        super().__init__(first["msg"])
        field = ".".join(str(part) for part in first["loc"]) or None
        self.answer = {"type": "reject", "field": field, "reason": first["type"],
                       "message": first["msg"], "errors": errors, **extra}


def refused(field: str | None, reason: str, message: str, **extra: Any) -> Reject:
    """A Reject of one error: `field` (or the message as a whole) and why."""
    return Reject([an_error((field,) if field else (), reason, message)], **extra)


def _valid(checked, kind: type):
    """`checked` when it is a `kind`, else (a list of errors) refused."""
    if isinstance(checked, kind):
        return checked
    raise RequestRejected(checked)


class OrderSocket:
    def __init__(self, websocket: WebSocket, entry: OrderEntry, feed: ReportFeed,
                 api_keys: ApiKeyCache) -> None:
        self.websocket = websocket
        self.entry = entry
        self.feed = feed
        self.venue = entry.venue
        self.api_keys = api_keys
        self.account_id = 0
        self._delivered: dict[int, int] = {}  # partition -> last sequence sent
        self._replaying: dict[int, list[pb.Event]] = {}  # partition -> live reports held
        # Each message waits encoded, with whether it is a report: (text, report).
        self._outbox = Outbox(websocket, OUTBOX_LIMIT, OUTBOX_BYTES, "reading too slowly; "
                              "resume with subscribe", WS_SLOW_CONSUMERS.inc, _text_size)
        self._replays: set[asyncio.Task] = set()

    async def serve(self) -> None:
        account_id = await self._authenticate()
        if account_id is None:
            return
        self.account_id = account_id
        limits = self.entry.limits
        if (refusal := limits.open_socket(account_id)) is not None:
            await self.websocket.send_text(_encode({
                "type": "reject", "field": "key", "reason": refusal.reason,
                "message": refusal.detail, "retryAfter": refusal.retry_after}).decode())
            await self.websocket.close(code=status.WS_1013_TRY_AGAIN_LATER,
                                       reason=refusal.reason)
            return
        transport = self.websocket.scope.get(TRANSPORT)
        if transport is not None:  # counted by its account now, not as an HTTP connection
            hand_over(transport)
        WS_CONNECTIONS.inc()
        sender = asyncio.create_task(self._outbox.run(_text_of, _sent))
        try:
            await self.feed.join(self)
            self._send({"type": "authenticated", "partitions": self.venue.partitions})
            async for text in received_texts(self.websocket):
                await self._handle(text)
        finally:
            limits.close_socket(account_id)
            self.feed.leave(self)
            WS_CONNECTIONS.dec()
            for task in (sender, *self._replays):
                task.cancel()
            await asyncio.gather(sender, *self._replays, return_exceptions=True)

    # --- reports -------------------------------------------------------------------------

    def on_report(self, partition: int, event: pb.Event) -> None:
        held = self._replaying.get(partition)
        if held is not None:
            held.append(event)
        else:
            self._deliver(partition, event)

    def _deliver(self, partition: int, event: pb.Event) -> None:
        if event.sequence <= self._delivered.get(partition, 0):
            return
        self._delivered[partition] = event.sequence
        self._send(report_message(self.venue, partition, event))

    async def _subscribe(self, partition: int, from_sequence: int,
                         request_id: Any, read: list[int]) -> None:
        """Replay the account's reports of `partition` from `from_sequence`, then go live."""
        self._replaying[partition] = []
        delivered = self._delivered.get(partition)
        self._delivered[partition] = from_sequence - 1
        replayed = False
        try:
            next_sequence = from_sequence
            async with aclosing(self.feed.replay(partition, from_sequence)) as batches:
                async for batch in batches:
                    next_sequence = batch.next_sequence
                    read[0] += len(batch.events)
                    for event in batch.events:
                        if (event.WhichOneof("body") == "report"
                                and event.report.account_id == self.account_id):
                            self._deliver(partition, event)
            if from_sequence > next_sequence:
                # Past the partition's end: waiting for it would hold back every live
                # report until then. Refused, and the socket goes on as it was.
                self._send(refused("fromSequence", "past_end",
                                  f"partition {partition} is at sequence {next_sequence}: "
                                  f"fromSequence {from_sequence} is past it",
                                  partition=partition).answer | _echo(request_id))
            else:
                replayed = True
        except EngineUnavailable as error:
            self._send(refused("fromSequence", "replay_failed", str(error),
                              partition=partition).answer | _echo(request_id))
        finally:
            if not replayed:  # refused or failed: live reports go on from where they were
                self._delivered.pop(partition, None)
                if delivered is not None:
                    self._delivered[partition] = delivered
            held = self._replaying.pop(partition, [])
            if replayed:
                self._send({"type": "subscribed", "partition": partition,
                            "fromSequence": from_sequence} | _echo(request_id))
            for event in held:
                self._deliver(partition, event)

    # --- messages in -----------------------------------------------------------------------

    async def _handle(self, text: str) -> None:
        request_id = kind = None
        try:
            try:
                message = decode_json(text)
            except DECODE_ERRORS as error:
                raise refused(None, "json_invalid", not_json(error, text)) from None
            if not isinstance(message, dict):
                raise refused(None, "json_invalid", "a message is a JSON object")
            request_id = message.pop("requestId", None)
            traceparent = traceparent_of(message.pop("traceparent", None))
            kind = message.pop("type", None)
            try:
                answer = await self._answer(kind, message, traceparent, request_id)
            except RequestRejected as rejected:
                raise Reject(rejected.errors) from None
            except ValidationError as wrong:  # a subscribe message
                raise Reject([an_error(tuple(e["loc"]), e["type"], e["msg"], e.get("input"))
                              for e in wrong.errors(include_url=False)]) from None
        except Reject as reject:
            answer = reject.answer
            if kind == "new":
                ORDERS_REJECTED.labels(channel=CHANNEL_WS, reason=answer["reason"]).inc()
        if answer is not None:
            self._send(answer | _echo(request_id))

    async def _answer(self, kind: Any, message: dict[str, Any], traceparent: str,
                      request_id: Any) -> dict[str, Any] | None:
        entry, account_id = self.entry, self.account_id
        try:
            if kind == "new":
                checked = _valid(_new_order(self.venue, message), CheckedOrder)
                enqueued, client_order_id = await entry.submit(checked, account_id,
                                                               traceparent, CHANNEL_WS)
                return {"type": "ack"} | Accepted(
                    order_id=str(enqueued.order_id), client_order_id=client_order_id,
                    duplicate=enqueued.duplicate).model_dump(by_alias=True)
            if kind == "cancel":
                ref = _valid(order_ref(message), OrderRef)
                changed = await entry.cancel(ref, account_id, traceparent, CHANNEL_WS)
                return {"type": "ack"} | changed.model_dump(by_alias=True)
            if kind == "replace":
                ref = _valid(order_ref(message, also=("price", "quantity")), OrderRef)
                terms = _valid(replace_terms({name: message[name] for name in
                                              ("price", "quantity") if name in message}),
                               Terms)
                changed = await entry.replace(ref, terms, account_id, traceparent, CHANNEL_WS)
                return {"type": "ack"} | changed.model_dump(by_alias=True)
            if kind == "subscribe":
                if extra := unknown_field_errors(message, _SUBSCRIBE_FIELDS):
                    raise Reject(extra)
                return self._start_subscribe(SubscribeMessage.model_validate(message),
                                             request_id)
            if kind == "auth":
                raise refused("type", "already_authenticated", "this socket is authenticated")
            raise refused("type", "unknown_type",
                         f"type must be new, cancel, replace or subscribe, not {kind!r}")
        except ShardBusy as busy:
            raise refused(None, busy.reason, str(busy), shard=busy.shard,
                         retryAfter=busy.retry_after) from None
        except OrderNotFound as error:
            field = "orderId" if message.get("orderId") is not None else "clientOrderId"
            raise refused(field, error.reason, str(error)) from None
        except OrderClosed as error:
            raise refused(None, error.reason, str(error), orderId=str(error.order_id),
                         clientOrderId=error.client_order_id, orderStatus=error.status) from None
        except OutOfMemoryError as error:
            raise refused(None, "queue_full", queue_refusal(error)[1]["detail"]) from None
        except (RedisError, OSError) as error:
            raise refused(None, "queue_unavailable", f"order queue unavailable "
                         f"({type(error).__name__}); nothing was queued unless a retry with "
                         "the same clientOrderId says so") from None
        except asyncpg.PostgresError as error:
            raise refused(None, "database_unavailable",
                         f"database unavailable ({type(error).__name__})") from None

    def _start_subscribe(self, subscribe: SubscribeMessage, request_id: Any) -> None:
        if subscribe.partition >= self.venue.partitions:
            raise refused("partition", "unknown_partition",
                         f"the venue has partitions 0..{self.venue.partitions - 1}")
        refusal = self.entry.limits.start_replay(self.account_id, subscribe.partition)
        if refusal is not None:
            raise refused("fromSequence", refusal.reason, refusal.detail,
                          retryAfter=refusal.retry_after)
        # Its own task: orders on this socket go on while the replay streams.
        read = [0]  # events of the partition it has read, the account's or not
        task = asyncio.create_task(self._subscribe(subscribe.partition,
                                                   subscribe.from_sequence, request_id, read))
        self._replays.add(task)
        task.add_done_callback(self._replays.discard)
        # (Charged however it ends: cancelled with the socket, even before it began.)
        task.add_done_callback(lambda _: self.entry.limits.end_replay(
            self.account_id, subscribe.partition, read[0]))
        return None

    # --- authentication --------------------------------------------------------------------

    async def _authenticate(self) -> int | None:
        """The account of the socket's key, or None after closing it."""
        scheme, _, key = self.websocket.headers.get("authorization", "").partition(" ")
        if scheme:
            account_id = (await self.api_keys.account_for(key.strip())
                          if scheme.lower() == "bearer" and key.strip() else None)
            if account_id is None:  # refused in the handshake: HTTP 403
                await self.websocket.close(code=status.WS_1008_POLICY_VIOLATION,
                                           reason="invalid or revoked API key")
                return None
            await self.websocket.accept()
            return account_id
        await self.websocket.accept()
        try:
            text = await asyncio.wait_for(anext(received_texts(self.websocket), None),
                                          AUTH_TIMEOUT_S)
            if text is None:  # the client left
                return None
            message = decode_json(text)
        except (TimeoutError, *DECODE_ERRORS):
            message = None
        except WebSocketDisconnect:
            return None
        if not isinstance(message, dict) or message.get("type") != "auth" \
                or not isinstance(message.get("key"), str):
            reason = "the first message must be {\"type\": \"auth\", \"key\": ...}"
        else:
            account_id = await self.api_keys.account_for(message["key"])
            if account_id is not None:
                return account_id
            reason = "invalid or revoked API key"
        await self.websocket.send_text(_encode(
            {"type": "reject", "field": "key", "reason": "unauthorized", "message": reason}
        ).decode())
        await self.websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=reason[:120])
        return None

    # --- messages out ------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        self._outbox.put((_encode(message).decode(), message["type"] == "report"))


def _text_of(item: tuple[str, bool]) -> str:
    return item[0]


def _text_size(item: tuple[str, bool]) -> int:
    return len(item[0])


def _sent(item: tuple[str, bool]) -> None:
    if item[1]:
        WS_REPORTS_SENT.inc()


def _new_order(venue, message: dict[str, Any]) -> CheckedOrder | list[Error]:
    """The order of a "new" message, its type given as orderType, and the errors about
    that field named so."""
    order = dict(message)
    if ORDER_TYPE in order:
        order["type"] = order.pop(ORDER_TYPE)
    checked = new_order(venue, order)
    if isinstance(checked, CheckedOrder):
        return checked
    return [e | {"loc": [ORDER_TYPE, *e["loc"][1:]]} if e["loc"][:1] == ["type"] else e
            for e in checked]


def _echo(request_id: Any) -> dict[str, Any]:
    return {} if request_id is None else {"requestId": echoed(request_id)}
