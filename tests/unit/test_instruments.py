"""Decimal prices and quantities <-> integer ticks and lots: exact, or an error."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from venue.contract.instruments import Instrument, OffGrid, from_units, to_units

TICK = Decimal("0.01")


@pytest.fixture
def btc() -> Instrument:
    return Instrument(symbol="BTC-USD", id=1, tick_size="0.01", lot_size="0.0001",
                      min_price="0.01", max_price="1000000", max_quantity="1000")


@pytest.mark.parametrize(("text", "ticks"), [
    ("100.01", 10001),
    ("100.10", 10010),
    ("100", 10000),
    ("0.01", 1),
    ("1.5", 150),
    ("+1.5", 150),
    (".5", 50),
    ("7.", 700),
    ("0.0100000", 1),
])
def test_decimal_on_the_grid_converts_exactly(text: str, ticks: int) -> None:
    assert to_units(text, TICK, "price") == ticks


@pytest.mark.parametrize("text", ["100.005", "0.001", "-0.015", "99.999999999"])
def test_value_off_the_grid_is_rejected_never_rounded(text: str) -> None:
    with pytest.raises(OffGrid, match="not a multiple of 0.01"):
        to_units(text, TICK, "price")


def test_off_grid_message_names_the_field_the_value_and_the_step() -> None:
    with pytest.raises(OffGrid) as error:
        to_units("100.005", TICK, "price")
    assert str(error.value) == "price 100.005 is not a multiple of 0.01"


@pytest.mark.parametrize("text", [
    "abc", "", "1,5", "NaN", "sNaN", "Infinity", "-inf", "0x10", "1e3", "1E-2", "2.5E+1",
    " 1.5 ", "1.5\n", "\u0665\u0660.00", "\uff11\uff10", "1_000", "1..5", ".", "+", "--1",
    "\u00b2"])
def test_only_ascii_digits_with_a_sign_and_a_point_are_a_decimal_string(text: str) -> None:
    with pytest.raises(OffGrid, match="must be a decimal string of ASCII digits"):
        to_units(text, TICK, "price")


def test_non_string_input_is_off_grid_not_a_float_conversion() -> None:
    with pytest.raises(OffGrid, match="decimal string"):
        to_units(100.1, TICK, "price")  # type: ignore[arg-type]


def test_negative_values_convert_exactly_and_positivity_is_the_callers_check() -> None:
    assert to_units("-1.00", TICK, "price") == -100
    assert to_units("-0", TICK, "price") == 0


def test_huge_value_within_decimal_precision_converts_exactly() -> None:
    assert to_units("123456789012345678.01", TICK, "price") == 12345678901234567801
    assert to_units("1" + "0" * 25, TICK, "price") == 10**27


def test_value_beyond_decimal_precision_is_off_grid() -> None:
    with pytest.raises(OffGrid):
        to_units("1" + "0" * 30 + ".001", TICK, "price")


@pytest.mark.parametrize(("units", "step", "text"), [
    (10001, "0.01", "100.01"),
    (0, "0.0001", "0.0000"),
    (1, "0.0001", "0.0001"),
    (5, "1", "5"),
    (-5, "0.01", "-0.05"),
    (10**20 + 1, "0.01", "1000000000000000000.01"),
])
def test_units_print_with_as_many_places_as_the_step(units: int, step: str, text: str) -> None:
    assert from_units(units, Decimal(step)) == text


def test_price_and_quantity_round_trip_through_ticks_and_lots(btc: Instrument) -> None:
    assert btc.price_text(btc.price_ticks("64250.50")) == "64250.50"
    assert btc.quantity_text(btc.quantity_lots("0.25")) == "0.2500"


def test_average_price_is_notional_over_quantity_to_four_extra_places_at_least_the_ticks(btc: Instrument) -> None:
    # 2 lots at 100.00 and 1 lot at 100.01: notional in ticks * lots.
    assert btc.average_price_text(2 * 10000 + 1 * 10001, 3) == "100.003333"
    assert btc.average_price_text(2 * 10000, 2) == "100.00"  # on the grid: as a price reads
    assert btc.average_price_text(2 * 10000 + 1 * 10001 + 1 * 10002, 4) == "100.0075"
    assert btc.average_price_text(0, 0) is None
    whole = Instrument(symbol="IDX", id=9, tick_size="1", lot_size="1", min_price="1",
                       max_price="100000", max_quantity="100")
    assert whole.average_price_text(100 + 101, 2) == "100.5"
    assert whole.average_price_text(200, 2) == "100"


def test_instrument_band_and_maximum_are_in_ticks_and_lots(btc: Instrument) -> None:
    assert btc.min_price_ticks == 1
    assert btc.max_price_ticks == 100_000_000
    assert btc.max_quantity_lots == 10_000_000


@pytest.mark.parametrize("override", [
    {"min_price": "0.005"},
    {"max_price": "1000000.001"},
    {"max_quantity": "0.00001"},
    {"min_price": "10", "max_price": "1"},
    {"tick_size": "0"},
    {"lot_size": "-1"},
    {"tick_size": "abc"},
])
def test_instrument_with_band_off_its_grid_or_inverted_is_refused(override: dict) -> None:
    fields = dict(symbol="BTC-USD", id=1, tick_size="0.01", lot_size="0.0001",
                  min_price="0.01", max_price="1000000", max_quantity="1000") | override
    with pytest.raises(ValidationError):
        Instrument(**fields)


def test_order_terms_read_back_from_memory_are_what_a_first_check_gives(
        btc: Instrument) -> None:
    fresh = btc.model_copy()
    terms = [("100.05", "0.5"), (None, "0.5"), ("100.05", "0"), ("100.055", "0.5"),
             ("-1", "0.5"), ("100.05", "-0.5"), ("100.05", "1e3"), ("0", "0")]
    first = [btc.order_terms(price, quantity) for price, quantity in terms]
    # Good terms are remembered; asked again, in any order, every answer is the same.
    again = [btc.order_terms(price, quantity) for price, quantity in reversed(terms)]
    assert again == list(reversed(first))
    assert [fresh.order_terms(price, quantity) for price, quantity in terms] == first
    assert first[0] == (btc.price_ticks("100.05"), btc.quantity_lots("0.5"), [])


def test_an_instrument_remembers_a_bounded_number_of_good_terms(btc: Instrument) -> None:
    for cents in range(20_000):
        price = f"{100 + cents // 100}.{cents % 100:02d}"
        assert btc.order_terms(price, "1")[2] == []
    prices, quantities = btc._good_terms
    assert 0 < len(prices) <= 4096 and 0 < len(quantities) <= 4096
