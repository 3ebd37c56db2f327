"""Instruments and the one place where decimal prices and quantities become integers.

The HTTP API speaks decimal strings; the engine, the queue and the database speak ticks
and lots. A value off the instrument's grid is an error, never rounded.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class OffGrid(ValueError):
    """A decimal value that is not a whole number of ticks or lots (or not a number)."""


def _positive_decimal(value: str, what: str) -> Decimal:
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError):
        raise ValueError(f"{what} must be a decimal string, got {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{what} must be a positive decimal, got {value!r}")
    return number


def to_units(value: str | Decimal, step: Decimal, what: str) -> int:
    """`value` as a whole number of `step`s; raises OffGrid when it is not one."""
    if isinstance(value, Decimal):
        number = value
    else:
        if not isinstance(value, str):
            raise OffGrid(f"{what} must be a decimal string")
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise OffGrid(f"{what} {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise OffGrid(f"{what} {value!r} is not a finite number")
    try:
        units, remainder = divmod(number, step)
    except InvalidOperation:  # more digits than any instrument could hold
        raise OffGrid(f"{what} {value} is out of range") from None
    if remainder != 0:
        raise OffGrid(f"{what} {value} is not a multiple of {step}")
    return int(units)


def from_units(units: int, step: Decimal) -> str:
    """The decimal string of `units` steps, with as many places as the step has."""
    places = max(0, -step.as_tuple().exponent)
    return f"{Decimal(units) * step:.{places}f}"


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

    @property
    def tick(self) -> Decimal:
        return Decimal(self.tick_size)

    @property
    def lot(self) -> Decimal:
        return Decimal(self.lot_size)

    @property
    def min_price_ticks(self) -> int:
        return to_units(self.min_price, self.tick, "min_price")

    @property
    def max_price_ticks(self) -> int:
        return to_units(self.max_price, self.tick, "max_price")

    @property
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

    def average_price_text(self, cum_notional: int, cum_qty: int) -> str | None:
        """avgPx as a decimal string: cum_notional (ticks * lots) / cum_qty (lots)."""
        if cum_qty == 0:
            return None
        places = max(0, -self.tick.as_tuple().exponent) + 4
        average = Decimal(cum_notional) * self.tick / Decimal(cum_qty)
        return f"{average.quantize(Decimal(1).scaleb(-places)).normalize():f}"
