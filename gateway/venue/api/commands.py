"""Engine commands as the gateway writes them.

The gateway encodes only the Command body; the submitter appends shard and stream id.
"""

from __future__ import annotations

from venue.api.models import OrderRequest
from venue.enginepb import engine_pb2
from venue.enginewire import ORDER_TYPES, SIDES, TIMES_IN_FORCE


def encode_new_order(order: OrderRequest, *, order_id: int, client_order_id: str,
                     account_id: int, instrument_id: int, price_ticks: int,
                     quantity_lots: int) -> bytes:
    """The serialized Command carrying only `new_order`."""
    return engine_pb2.Command(new_order=engine_pb2.NewOrder(
        order_id=order_id, client_order_id=client_order_id, account_id=account_id,
        instrument_id=instrument_id, side=SIDES[order.side], type=ORDER_TYPES[order.type],
        time_in_force=TIMES_IN_FORCE[order.time_in_force], price=price_ticks,
        quantity=quantity_lots, post_only=order.post_only)).SerializeToString()


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
    """The serialized Command carrying only `replace` (quantity: the new total)."""
    return engine_pb2.Command(replace=engine_pb2.ReplaceOrder(
        order_id=order_id, account_id=account_id, instrument_id=instrument_id,
        price=price_ticks, quantity=quantity_lots)).SerializeToString()
