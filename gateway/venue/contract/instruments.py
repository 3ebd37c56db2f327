"""Instruments and the one place where decimal prices and quantities become integers.

The HTTP API speaks decimal strings; the engine, the queue and the database speak ticks
and lots. A value off the instrument's grid is an error, never rounded.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Price and quantity texts an instrument remembers as good (see Instrument.order_terms).
_GOOD_TERMS = 4096


# The one rule for a decimal string, wherever one comes in (an order, an instrument):
# ASCII digits, an optional sign and at most one point. No exponent, no NaN or
# Infinity, no spaces, no digits of other scripts: Python's Decimal takes all of those.
DECIMAL_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
_DECIMAL = re.compile(DECIMAL_PATTERN.removesuffix("$") + r"\Z")


class OffGrid(ValueError):
    """A decimal value that is not a whole number of ticks or lots (or not a number)."""


class NotDecimal(OffGrid):
    """A text that is not a decimal string by DECIMAL_PATTERN."""


def parse_decimal(value: object, what: str) -> Decimal:
    """`value`, a decimal string by DECIMAL_PATTERN, as a Decimal; NotDecimal naming
    `what` otherwise."""
    if not isinstance(value, str) or _DECIMAL.match(value) is None:
        raise NotDecimal(f"{what} must be a decimal string of ASCII digits with an optional "
                         f"sign and point, got {value!r}")
    return Decimal(value)


def _positive_decimal(value: str, what: str) -> Decimal:
    number = parse_decimal(value, what)
    if number <= 0:
        raise ValueError(f"{what} must be a positive decimal, got {value!r}")
    return number


def to_units(value: str | Decimal, step: Decimal, what: str) -> int:
    """`value` as a whole number of `step`s; raises OffGrid when it is not one."""
    if isinstance(value, str):
        units = _plain_units(value, step)
        if units is not None:
            return units
    number = value if isinstance(value, Decimal) else parse_decimal(value, what)
    if not number.is_finite():
        raise OffGrid(f"{what} {value!r} is not a finite number")
    try:
        units, remainder = divmod(number, step)
    except InvalidOperation:  # more digits than any instrument could hold
        raise OffGrid(f"{what} {value} is out of range") from None
    if remainder != 0:
        raise OffGrid(f"{what} {value} is not a multiple of {step}")
    return int(units)


def ascii_digits(text: str) -> bool:
    """Whether `text` is digits as the API writes them: ASCII, nothing else (an integer,
    or either side of a decimal string's point)."""
    return text.isascii() and text.isdigit()


def _plain_units(text: str, step: Decimal) -> int | None:
    """The common case on the order path, "123.45", in integer arithmetic.

    None when `text` is not plain digits with at most one point, or is off the grid:
    the Decimal path then decides, and words the error.
    """
    whole, _, fraction = text.partition(".")
    if not ascii_digits(whole) or (fraction and not ascii_digits(fraction)):
        return None
    places, mantissa = grid(step)
    if places < 0 or len(fraction) > places:
        return None
    units, remainder = divmod(int(whole + fraction.ljust(places, "0")), mantissa)
    return units if remainder == 0 else None


@lru_cache(maxsize=256)
def grid(step: Decimal) -> tuple[int, int]:
    """A step as (decimal places, integer mantissa): 0.05 is (2, 5)."""
    _, digits, exponent = step.as_tuple()
    return -exponent, int("".join(map(str, digits)))


def from_units(units: int, step: Decimal) -> str:
    """The decimal string of `units` steps, with as many places as the step has."""
    places = max(0, -step.as_tuple().exponent)
    return f"{Decimal(units) * step:.{places}f}"


class Problem(NamedTuple):
    """What is wrong with one field of an order: field, kind (a short code) and why."""

    field: str
    kind: str
    message: str


class Instrument(BaseModel):
    """One tradable instrument of the venue.

    tick_size and lot_size are decimal strings; min_price and max_price bound the
    prices the venue accepts (the price band), in the same decimal units.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str = Field(pattern=r"^[A-Z0-9][A-Z0-9._-]{0,31}$")
    id: int = Field(ge=1, le=65535)
    tick_size: str
    lot_size: str
    min_price: str
    max_price: str
    max_quantity: str = "1000000"

    @field_validator("tick_size", "lot_size", "min_price", "max_price", "max_quantity")
    @classmethod
    def _is_positive_decimal(cls, value: str, info) -> str:
        _positive_decimal(value, info.field_name)
        return value

    @model_validator(mode="after")
    def _band_on_grid(self) -> Instrument:
        for name in ("min_price", "max_price"):
            try:
                to_units(getattr(self, name), self.tick, name)
            except OffGrid as error:
                raise ValueError(str(error)) from None
        try:
            to_units(self.max_quantity, self.lot, "max_quantity")
        except OffGrid as error:
            raise ValueError(str(error)) from None
        if self.min_price_ticks > self.max_price_ticks:
            raise ValueError("min_price must not be above max_price")
        return self

    @cached_property
    def tick(self) -> Decimal:
        return Decimal(self.tick_size)

    @cached_property
    def lot(self) -> Decimal:
        return Decimal(self.lot_size)

    @cached_property
    def min_price_ticks(self) -> int:
        return to_units(self.min_price, self.tick, "min_price")

    @cached_property
    def max_price_ticks(self) -> int:
        return to_units(self.max_price, self.tick, "max_price")

    @cached_property
    def max_quantity_lots(self) -> int:
        return to_units(self.max_quantity, self.lot, "max_quantity")

    def price_ticks(self, price: str | Decimal) -> int:
        return to_units(price, self.tick, "price")

    def quantity_lots(self, quantity: str | Decimal) -> int:
        return to_units(quantity, self.lot, "quantity")

    def price_text(self, ticks: int) -> str:
        return from_units(ticks, self.tick)

    def quantity_text(self, lots: int) -> str:
        return from_units(lots, self.lot)

    def order_terms(self, price: str | None, quantity: str) -> tuple[int, int, list[Problem]]:
        """(price ticks, quantity lots, problems) of an order's price and quantity.

        A problem names the field, its kind and why: not positive, outside the price
        band, over the maximum quantity, or off the tick or lot grid. A market order has
        no price (0 ticks). The one check of order terms, for every way orders arrive.
        """
        good_prices, good_quantities = self._good_terms
        quantity_lots = good_quantities.get(quantity)
        if quantity_lots is not None:
            if price is None:
                return 0, quantity_lots, []
            price_ticks = good_prices.get(price)
            if price_ticks is not None:
                return price_ticks, quantity_lots, []
        price_ticks, quantity_lots, problems = self._check_terms(price, quantity)
        if not problems:  # remembered: the next order at this price reads it back
            if len(good_prices) >= _GOOD_TERMS or len(good_quantities) >= _GOOD_TERMS:
                good_prices.clear()
                good_quantities.clear()
            if price is not None:
                good_prices[price] = price_ticks
            good_quantities[quantity] = quantity_lots
        return price_ticks, quantity_lots, problems

    @cached_property
    def _good_terms(self) -> tuple[dict[str, int], dict[str, int]]:
        """Price and quantity texts of good orders, with their ticks and lots: the same
        few prices come again and again, and parsing them was a tenth of a batch."""
        return {}, {}

    def _check_terms(self, price: str | None,
                     quantity: str) -> tuple[int, int, list[Problem]]:
        problems: list[Problem] = []
        price_ticks = 0
        if price is not None:
            try:
                price_ticks = self.price_ticks(price)
            except OffGrid as error:
                problem = self._sign_problem("price", price) or Problem(
                    "price", "off_tick", str(error))
                problems.append(problem)
            else:
                if price_ticks <= 0:
                    problems.append(Problem("price", "not_positive",
                                            f"price {price} must be greater than 0"))
                elif not self.min_price_ticks <= price_ticks <= self.max_price_ticks:
                    problems.append(Problem(
                        "price", "price_out_of_band",
                        f"price {price} is outside {self.symbol}'s band "
                        f"[{self.min_price}, {self.max_price}]"))
        quantity_lots = 0
        try:
            quantity_lots = self.quantity_lots(quantity)
        except OffGrid as error:
            problems.append(self._sign_problem("quantity", quantity) or Problem(
                "quantity", "off_lot", str(error)))
        else:
            if quantity_lots <= 0:
                problems.append(Problem("quantity", "not_positive",
                                        f"quantity {quantity} must be greater than 0"))
            elif quantity_lots > self.max_quantity_lots:
                problems.append(Problem(
                    "quantity", "quantity_too_large",
                    f"quantity {quantity} is over {self.symbol}'s maximum "
                    f"{self.max_quantity}"))
        return price_ticks, quantity_lots, problems

    def _sign_problem(self, field: str, value: str) -> Problem | None:
        """Not a decimal string; or off the grid and also not positive, or beyond any
        band: say that first."""
        try:
            number = parse_decimal(value, field)
        except NotDecimal as error:
            return Problem(field, "decimal_parsing", str(error))
        if number <= 0:
            return Problem(field, "not_positive", f"{field} {value} must be greater than 0")
        if field == "price" and not Decimal(self.min_price) <= number <= Decimal(self.max_price):
            return Problem("price", "price_out_of_band",
                           f"price {value} is outside {self.symbol}'s band "
                           f"[{self.min_price}, {self.max_price}]")
        if field == "quantity" and number > Decimal(self.max_quantity):
            return Problem("quantity", "quantity_too_large",
                           f"quantity {value} is over {self.symbol}'s maximum "
                           f"{self.max_quantity}")
        return None

    def average_price_text(self, cum_notional: int, cum_qty: int) -> str | None:
        """avgPx as a decimal string: cum_notional (ticks * lots) / cum_qty (lots), to
        four places past the tick's, trailing zeros dropped down to the tick's places, so
        an average on the grid reads as a price does ("30000.00", "100.003333")."""
        if cum_qty == 0:
            return None
        tick_places = max(0, -self.tick.as_tuple().exponent)
        average = Decimal(cum_notional) * self.tick / Decimal(cum_qty)
        text = f"{average.quantize(Decimal(1).scaleb(-(tick_places + 4))):f}"
        kept = len(text) - 4  # through the tick's places
        return (text[:kept] + text[kept:].rstrip("0")).rstrip(".")  # "." of a whole tick
