"""Engine commands as the gateway writes them.

The gateway encodes the Command body; the submitter adds the stream entry's traceparent,
shard, stream id and index (see enginewire.command_batch).

New orders are the hot path (a batch request encodes thousands), so they are written
byte by byte, exactly as protobuf would write them (a unit test holds the two equal):
the fields an account sends the same for every order of an instrument come from a
cache, and each order adds only its id, clientOrderId, price and quantity.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from venue.enginepb import engine_pb2
from venue.contract.wire import ORDER_TYPES, SIDES, TIMES_IN_FORCE, key, varint

_NEW_ORDER = key("Command", "new_order")
_ORDER_ID, _CLIENT_ORDER_ID = key("NewOrder", "order_id"), key("NewOrder", "client_order_id")
_ACCOUNT, _INSTRUMENT = key("NewOrder", "account_id"), key("NewOrder", "instrument_id")
_SIDE, _TYPE, _TIME_IN_FORCE = (key("NewOrder", "side"), key("NewOrder", "type"),
                                key("NewOrder", "time_in_force"))
_PRICE, _QUANTITY = key("NewOrder", "price"), key("NewOrder", "quantity")
_POST_ONLY = key("NewOrder", "post_only") + varint(1)  # true


class OrderKind(Protocol):
    """What encoding needs of an order besides its numbers (a WireOrder has it)."""

    side: str
    type: str
    time_in_force: str
    post_only: bool


@lru_cache(maxsize=4096)
def _new_order_fields(account_id: int, instrument_id: int, side: str, order_type: str,
                      time_in_force: str) -> bytes:
    """NewOrder's account, instrument, side, type and time in force, encoded."""
    return b"".join((_ACCOUNT, varint(account_id), _INSTRUMENT, varint(instrument_id),
                     _SIDE, varint(SIDES[side]), _TYPE, varint(ORDER_TYPES[order_type]),
                     _TIME_IN_FORCE, varint(TIMES_IN_FORCE[time_in_force])))


def encode_new_order(order: OrderKind, *, order_id: int, client_order_id: str,
                     account_id: int, instrument_id: int, price_ticks: int,
                     quantity_lots: int) -> bytes:
    """The serialized Command carrying only `new_order`. Numbers are >= 0, checked."""
    client = client_order_id.encode()
    body = b"".join((
        _ORDER_ID, varint(order_id),
        _CLIENT_ORDER_ID + varint(len(client)) + client if client else b"",
        _new_order_fields(account_id, instrument_id, order.side, order.type,
                          order.time_in_force),
        _PRICE + varint(price_ticks) if price_ticks else b"",
        _QUANTITY + varint(quantity_lots) if quantity_lots else b"",
        _POST_ONLY if order.post_only else b""))
    return b"".join((_NEW_ORDER, varint(len(body)), body))


def decode_new_order(command: bytes) -> engine_pb2.NewOrder | None:
    """The NewOrder inside a serialized Command, or None when the command is another kind."""
    decoded = engine_pb2.Command.FromString(command)
    return decoded.new_order if decoded.WhichOneof("body") == "new_order" else None


def encode_cancel(*, order_id: int, account_id: int, instrument_id: int) -> bytes:
    """The serialized Command carrying only `cancel`."""
    return engine_pb2.Command(cancel=engine_pb2.CancelOrder(
        order_id=order_id, account_id=account_id,
        instrument_id=instrument_id)).SerializeToString()


def encode_replace(*, order_id: int, account_id: int, instrument_id: int, price_ticks: int,
                   quantity_lots: int) -> bytes:
    """The serialized Command carrying only `replace` (quantity: the new total; a term
    0 is left as the engine holds it)."""
    return engine_pb2.Command(replace=engine_pb2.ReplaceOrder(
        order_id=order_id, account_id=account_id, instrument_id=instrument_id,
        price=price_ticks, quantity=quantity_lots)).SerializeToString()
