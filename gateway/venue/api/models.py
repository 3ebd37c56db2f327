"""The gateway's public response models and the venue's words (camelCase JSON).

Prices and quantities travel as decimal strings, never JSON numbers: a float cannot hold
0.1. The request models, and every rule a request must keep, are
venue.api.order_rules'.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from venue.contract.instruments import Instrument


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    DAY = "day"


class OrderStatus(StrEnum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Accepted(ApiModel):
    """The order is durably queued for the engine; its fate is at GET /v1/orders/{orderId}."""

    order_id: str = Field(description="The venue's id for the order (a decimal integer string).")
    client_order_id: str
    status: Literal["pending_new"] = "pending_new"
    duplicate: bool = Field(
        description="True when clientOrderId was seen before: orderId is the original order's "
                    "and nothing new was queued.")


class Order(ApiModel):
    """The latest known state of an order. quantity = cumQty + leavesQty while it lives."""

    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price: str | None = Field(description="Limit price; null for a market order.")
    quantity: str
    post_only: bool
    status: OrderStatus = Field(
        description="pending_new until the engine has reported on the order.")
    cum_qty: str = Field(description="Quantity filled so far.")
    leaves_qty: str = Field(description="Quantity still open.")
    avg_px: str | None = Field(description="Average fill price; null before the first fill.")
    reject_reason: str | None = None
    created_at: datetime | None = Field(
        description="When the engine first saw the order; null while pending_new.")
    updated_at: datetime | None = Field(
        description="When the engine last changed the order; null while pending_new.")


class InstrumentView(ApiModel):
    """One tradable instrument: its grid, price band and largest order."""

    symbol: str
    tick_size: str = Field(description="Prices are whole multiples of this.")
    lot_size: str = Field(description="Quantities are whole multiples of this.")
    min_price: str
    max_price: str
    max_quantity: str

    @classmethod
    def of(cls, instrument: Instrument) -> InstrumentView:
        return cls(symbol=instrument.symbol, tick_size=instrument.tick_size,
                   lot_size=instrument.lot_size, min_price=instrument.min_price,
                   max_price=instrument.max_price, max_quantity=instrument.max_quantity)


class FieldError(BaseModel):
    """One thing wrong with a request, as FastAPI's 422 words it, whatever the channel."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None


class BatchItemResult(ApiModel):
    """The fate of one order of a batch: queued (with its id) or rejected (with why)."""

    index: int = Field(description="Position of the order in the request's `orders`.")
    status: Literal["pending_new", "rejected"]
    order_id: str | None = None
    client_order_id: str | None = None
    duplicate: bool | None = None
    errors: list[FieldError] | None = None
    retry_after: int | None = Field(
        default=None, description="Seconds to wait before sending it again: its shard's "
                                  "queue is full (backpressure).")


class BatchAccepted(ApiModel):
    accepted: int
    rejected: int
    results: list[BatchItemResult]


# --- cancel and replace ------------------------------------------------------------------

class OrderChangeAccepted(ApiModel):
    """The cancel or replace is queued behind the order on its shard: it never overtakes
    the order. The engine's verdict appears at GET /v1/orders/{orderId}."""

    order_id: str
    client_order_id: str
    status: Literal["pending_cancel", "pending_replace"]


class OrderChangeRefused(ApiModel):
    """A cancel or replace refused at once (409), nothing queued: as the engine's
    cancel-reject report says it, the order's real status and why. One that lost its
    race in the engine is answered 202 and then by a cancel_rejected or replace_rejected
    report (on the WebSocket, and in the order's executions)."""

    detail: str
    order_id: str
    client_order_id: str
    status: str = Field(description="The order's status: filled, canceled, rejected or "
                                    "expired (a market order: any).")
    reason: str = Field(description="too_late_to_cancel: the order is done; unsupported: "
                                    "only a limit order can be replaced.")


# --- order lists, books, trades ----------------------------------------------------------

class OrderFilter(StrEnum):
    """Which orders GET /v1/orders lists; open means new or partially_filled."""

    OPEN = "open"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    ALL = "all"


class OrderPage(ApiModel):
    """Orders, newest first; pass `nextAfter` as `after` for the next page."""

    orders: list[Order]
    next_after: str | None = Field(
        description="The orderId to pass as `after` for the next page; null on the last page.")


class BookLevel(ApiModel):
    price: str
    quantity: str = Field(description="Total resting quantity at this price.")
    orders: int = Field(description="Resting orders at this price.")


class Book(ApiModel):
    """An instrument's order book as the engine holds it, best prices first."""

    symbol: str
    sequence: int = Field(description="The partition's last event sequence applied when the "
                                      "snapshot was taken.")
    bids: list[BookLevel]
    asks: list[BookLevel]


class Trade(ApiModel):
    trade_id: str = Field(description="The engine's trade id (unique within a partition).")
    price: str
    quantity: str
    aggressor_side: Side = Field(description="The side of the order that took liquidity.")
    time: datetime = Field(description="When the engine matched it.")
    sequence: int = Field(description="The partition's event sequence of the trade.")


class Candle(ApiModel):
    """The trades of one interval (a bucket) of an instrument."""

    time: datetime = Field(description="The bucket's start, UTC: a whole multiple of the "
                                       "interval since 1970-01-01T00:00:00Z.")
    open: str = Field(description="The price of the bucket's first trade.")
    high: str
    low: str
    close: str = Field(description="The price of the bucket's last trade.")
    volume: str = Field(description="The quantity traded in the bucket.")
    trades: int = Field(description="How many trades the bucket holds.")
