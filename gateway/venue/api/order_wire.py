"""What the order routes write without the framework: the 202 body of a new order, and
the venue's instruments as the batch route's C path (venue._orderwire) reads them.

The rules are venue.api.order_rules'; the C path takes only batches those rules accept
(tests/unit/test_orderwire.py holds the two to the same answers).
"""

from __future__ import annotations

from functools import cache

from venue import _orderwire as orderwire
from venue.contract.config import VenueConfig
from venue.contract.instruments import grid
from venue.contract.wire import ORDER_TYPES, SIDES, TIMES_IN_FORCE


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
