"""New orders as they arrive on the order path: decoded with msgspec, checked in one pass.

POST /v1/orders and POST /v1/orders/batch decode with these rather than through
pydantic: on the hot path the framework's validation costs more than everything else
the gateway does. The rules are OrderRequest's (venue.api.models), which stays the
documented schema and words the errors of a single order that fails here.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Literal, NamedTuple

import msgspec

from venue.api.models import CLIENT_ORDER_ID_PATTERN, post_only_problem, price_problem
from venue.contract.config import VenueConfig
from venue.contract.wire import ORDER_TYPES, SIDES, TIMES_IN_FORCE
from venue.contract.instruments import Instrument, Problem, grid

from venue import _orderwire as orderwire

_CLIENT_ORDER_ID = re.compile(CLIENT_ORDER_ID_PATTERN)


class WireOrder(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """OrderRequest, as msgspec decodes it: types and enums here, the rest in check()."""

    symbol: str
    side: Literal["buy", "sell"]
    quantity: str
    type: Literal["limit", "market"] = "limit"
    time_in_force: Literal["gtc", "ioc", "fok", "day"] = "gtc"
    price: str | None = None
    client_order_id: str | None = None
    post_only: bool = False


class CheckedOrder(NamedTuple):
    """An order that passed every check: its instrument and terms in ticks and lots."""

    order: WireOrder
    instrument: Instrument
    price_ticks: int
    quantity_lots: int


decode_order = msgspec.json.Decoder(WireOrder).decode
# What decoding a body may raise: msgspec's errors, and UnicodeDecodeError for a string
# that is not UTF-8 (msgspec lets that one through as it is).
DECODE_ERRORS = (msgspec.MsgspecError, UnicodeDecodeError)


def check(venue: VenueConfig, order: WireOrder) -> CheckedOrder | list[Problem]:
    """The order on its instrument's grid, or what is wrong with it, field by field."""
    instrument = venue.by_symbol.get(order.symbol)
    if instrument is None:
        return [Problem("symbol", "unknown_symbol",
                        f"symbol {order.symbol!r} is not traded on this venue")]
    problems = [p for p in (price_problem(order.type, order.price),
                            post_only_problem(order.type, order.post_only)) if p is not None]
    if order.client_order_id is not None and not _CLIENT_ORDER_ID.match(
            order.client_order_id):
        problems.append(Problem("clientOrderId", "string_pattern_mismatch",
                                f"clientOrderId must match {CLIENT_ORDER_ID_PATTERN}"))
    if problems:
        return problems
    price_ticks, quantity_lots, problems = instrument.order_terms(order.price, order.quantity)
    return problems or CheckedOrder(order, instrument, price_ticks, quantity_lots)


def accepted_json(order_id: int, client_order_id: str, duplicate: bool) -> bytes:
    """The 202 body of POST /v1/orders (models.Accepted), written directly: a
    clientOrderId matches CLIENT_ORDER_ID_PATTERN, so it never needs escaping."""
    return (f'{{"orderId":"{order_id}","clientOrderId":"{client_order_id}",'
            f'"status":"pending_new","duplicate":{"true" if duplicate else "false"}}}').encode()


@cache
def batch_table(venue: VenueConfig) -> object | None:
    """The venue's instruments as venue._orderwire reads them, or None when an
    instrument's grid is not one it takes (every batch then takes the Python path)."""
    rows = []
    for i in venue.instruments:
        (price_places, price_mantissa), (lot_places, lot_mantissa) = grid(i.tick), grid(i.lot)
        if min(price_places, lot_places) < 0:
            return None
        rows.append((i.symbol, i.id, venue.shard_of(i), price_places, price_mantissa,
                     lot_places, lot_mantissa, i.min_price_ticks, i.max_price_ticks,
                     i.max_quantity_lots))
    try:
        return orderwire.make_table(
            rows, [SIDES[w] for w in ("buy", "sell")],
            [ORDER_TYPES[w] for w in ("limit", "market")],
            [TIMES_IN_FORCE[w] for w in ("gtc", "ioc", "fok", "day")])
    except (ValueError, OverflowError):  # a grid finer or a band wider than C's int64s
        return None
