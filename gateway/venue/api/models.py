"""The gateway's public request and response models (camelCase JSON).

Prices and quantities travel as decimal strings, never JSON numbers: a float cannot hold
0.1. `OrderRequest` checks what needs no instrument; `OrderRequest.on_grid` checks the
rest against the instrument and turns the decimals into ticks and lots.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from venue.contract.instruments import (DECIMAL_PATTERN, Instrument, NotDecimal, Problem,
                                        parse_decimal)

CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,63}$"
# Long enough for any price or quantity on any sane grid; bounds the parsing work.
DECIMAL_MAX_LENGTH = 40
# Documented in the schema (checked by parse_decimal, which words the 422's error).
_DECIMAL_SCHEMA = {"pattern": DECIMAL_PATTERN}


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


def _decimal_or_error(value: str, field: str) -> Decimal:
    try:
        return parse_decimal(value, field)
    except NotDecimal as error:
        raise PydanticCustomError("decimal_parsing", str(error)) from None


def _field_error(field: str, kind: str, message: str, value: Any) -> dict[str, Any]:
    """One error in FastAPI's 422 shape, for checks that run after pydantic's."""
    return {"loc": ("body", field), "msg": message, "type": kind, "input": value}


def price_problem(order_type: str | None, price: str | None) -> Problem | None:
    """A limit order needs a price; a market order must not have one."""
    if price is None and order_type == OrderType.LIMIT:
        return Problem("price", "price_required", "price is required for a limit order")
    if price is not None and order_type == OrderType.MARKET:
        return Problem("price", "price_not_allowed", "price must be absent for a market order")
    return None


def post_only_problem(order_type: str | None, post_only: bool) -> Problem | None:
    if post_only and order_type is not None and order_type != OrderType.LIMIT:
        return Problem("postOnly", "post_only_requires_limit",
                       "postOnly is allowed only on a limit order")
    return None


class OrderRequest(BaseModel):
    """A new order. Field order matters: `price` and `postOnly` are checked against `type`."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", json_schema_extra={
        "examples": [{"symbol": "BTC-USD", "side": "buy", "type": "limit", "timeInForce": "gtc",
                      "price": "64250.50", "quantity": "0.25", "clientOrderId": "my-order-1"}]})

    symbol: str = Field(min_length=1, max_length=32,
                        description="Instrument symbol, e.g. BTC-USD.")
    side: Side = Field(description="buy or sell.")
    type: OrderType = Field(default=OrderType.LIMIT, description="limit (default) or market.")
    time_in_force: TimeInForce = Field(
        default=TimeInForce.GTC, description="gtc (default), ioc, fok or day.")
    price: str | None = Field(
        default=None, max_length=DECIMAL_MAX_LENGTH, validate_default=True,
        json_schema_extra=_DECIMAL_SCHEMA,
        description="Limit price as a decimal string on the instrument's tick grid. "
                    "Required for limit orders, absent for market orders.")
    quantity: str = Field(max_length=DECIMAL_MAX_LENGTH, json_schema_extra=_DECIMAL_SCHEMA,
                          description="Quantity as a decimal string on the instrument's lot grid.")
    client_order_id: str | None = Field(
        default=None, pattern=CLIENT_ORDER_ID_PATTERN,
        description="Your id for the order, unique per account: 1-63 of [A-Za-z0-9._:-]. "
                    "Sending it again returns the original order instead of a second one. "
                    "When absent, the order id serves as clientOrderId and nothing is "
                    "deduplicated.")
    post_only: bool = Field(default=False, validate_default=True,
                            description="Rest only, never take liquidity. Limit orders only.")

    @field_validator("price")
    @classmethod
    def _price_matches_type(cls, price: str | None, info: ValidationInfo) -> str | None:
        problem = price_problem(info.data.get("type"), price)
        if problem is not None:
            raise PydanticCustomError(problem.kind, problem.message)
        if price is not None:
            _decimal_or_error(price, "price")
        return price

    @field_validator("quantity")
    @classmethod
    def _quantity_is_decimal(cls, quantity: str) -> str:
        _decimal_or_error(quantity, "quantity")
        return quantity

    @field_validator("post_only")
    @classmethod
    def _post_only_needs_limit(cls, post_only: bool, info: ValidationInfo) -> bool:
        problem = post_only_problem(info.data.get("type"), post_only)
        if problem is not None:
            raise PydanticCustomError(problem.kind, problem.message)
        return post_only

    def on_grid(self, instrument: Instrument) -> tuple[int, int]:
        """(price ticks, quantity lots) of this order; 0 ticks for a market order.

        Raises RequestValidationError naming every field that is off the instrument's
        grid, outside its price band, not positive or over its maximum quantity.
        """
        price_ticks, quantity_lots, problems = instrument.order_terms(self.price, self.quantity)
        if problems:
            raise problems_error(problems, {"price": self.price, "quantity": self.quantity})
        return price_ticks, quantity_lots


def problems_error(problems: list[Problem], values: dict[str, Any]) -> RequestValidationError:
    """A 422 naming each field with a problem; `values` gives the input of each field."""
    return RequestValidationError([_field_error(problem.field, problem.kind, problem.message,
                                                values.get(problem.field))
                                   for problem in problems])


def unknown_symbol(symbol: str) -> RequestValidationError:
    return RequestValidationError([_field_error(
        "symbol", "unknown_symbol", f"symbol {symbol!r} is not traded on this venue", symbol)])


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


class OrderBatch(BaseModel):
    """Up to the venue's batch size of orders, each checked and answered on its own."""

    orders: list[OrderRequest] = Field(min_length=1)


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


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

class ReplaceRequest(BaseModel):
    """New terms for a live order: a new limit price, a new total quantity, or both.

    A term left out keeps the order's last known value. Reducing the quantity at the same
    price keeps the order's time priority; a new price or more quantity loses it.
    """

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", json_schema_extra={
        "examples": [{"quantity": "0.10"}, {"price": "64200.00", "quantity": "0.25"}]})

    price: str | None = Field(
        default=None, max_length=DECIMAL_MAX_LENGTH, json_schema_extra=_DECIMAL_SCHEMA,
        description="New limit price as a decimal string on the instrument's tick grid.")
    quantity: str | None = Field(
        default=None, max_length=DECIMAL_MAX_LENGTH, json_schema_extra=_DECIMAL_SCHEMA,
        description="New total quantity (filled quantity included, as FIX OrderQty) as a "
                    "decimal string on the instrument's lot grid; must stay above what has "
                    "been filled.")

    @field_validator("price", "quantity")
    @classmethod
    def _is_decimal(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _decimal_or_error(value, info.field_name)
        return value

    @model_validator(mode="after")
    def _changes_something(self) -> ReplaceRequest:
        if self.price is None and self.quantity is None:
            raise PydanticCustomError("nothing_to_replace",
                                      "give a new price, a new quantity, or both")
        return self


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
