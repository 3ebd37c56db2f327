"""An order request is checked in full before anything is queued."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from venue.api.models import Accepted, InstrumentView, OrderType, TimeInForce
from venue.api.order_rules import WireOrder, at, check, problem_errors, request_errors
from venue.contract.config import VenueConfig
from venue.contract.instruments import Instrument

BTC = VenueConfig().by_symbol["BTC-USD"]  # tick 0.01, lot 0.0001, band [0.01, 1000000], max 1000
AAPL = VenueConfig().by_symbol["AAPL"]  # lot 1


def limit(**overrides: Any) -> dict[str, Any]:
    return {"symbol": "BTC-USD", "side": "buy", "price": "100.00", "quantity": "0.5"} | overrides


class Order:
    """An order as the rules take it (venue.api.order_rules), for these tests."""

    @staticmethod
    def model_validate(body: dict[str, Any]) -> Any:
        assert request_errors(body) == []
        return msgspec.convert(body, WireOrder)


OrderRequest = Order


def on_grid(order: Any, instrument=BTC) -> tuple[int, int]:
    price_ticks, quantity_lots, problems = instrument.order_terms(order.price, order.quantity)
    assert problems == []
    return price_ticks, quantity_lots


def errors_of(body: dict[str, Any]) -> list[tuple[tuple, str]]:
    errors = request_errors(body)
    assert errors
    return [(tuple(e["loc"]), e["type"]) for e in errors]


def grid_errors_of(body: dict[str, Any], instrument=BTC) -> list[dict[str, Any]]:
    order = OrderRequest.model_validate(body)
    _, _, problems = instrument.order_terms(order.price, order.quantity)
    errors = at(("body",), problem_errors(problems, body))
    assert errors
    return [e | {"loc": tuple(e["loc"])} for e in errors]


def test_limit_order_defaults_to_gtc_and_not_post_only() -> None:
    order = OrderRequest.model_validate(limit())
    assert order.type is OrderType.LIMIT
    assert check(VenueConfig(), order).order.time_in_force is TimeInForce.GTC
    assert order.post_only is False
    assert order.client_order_id is None


def test_a_market_order_is_ioc_unless_fok_and_never_rests() -> None:
    market = {"symbol": "BTC-USD", "side": "sell", "type": "market", "quantity": "1"}
    for given, taken in (({}, TimeInForce.IOC), ({"timeInForce": "ioc"}, TimeInForce.IOC),
                         ({"timeInForce": "fok"}, TimeInForce.FOK)):
        order = OrderRequest.model_validate(market | given)
        assert check(VenueConfig(), order).order.time_in_force is taken
    for resting in ("gtc", "day"):
        assert errors_of(market | {"timeInForce": resting}) == [
            (("timeInForce",), "market_order_never_rests")]
        problems = check(VenueConfig(), msgspec.convert(market | {"timeInForce": resting},
                                                         WireOrder))
        assert [(p.field, p.kind) for p in problems] == [
            ("timeInForce", "market_order_never_rests")]


def test_limit_order_is_priced_in_ticks_and_lots() -> None:
    assert on_grid(OrderRequest.model_validate(limit(price="64250.50", quantity="0.25"))) \
        == (6425050, 2500)


@pytest.mark.parametrize(("field", "value"), [
    ("price", "1e3"), ("quantity", "1E-4"), ("price", "NaN"), ("quantity", "Infinity"),
    ("price", "\u0665\u0660.00"), ("quantity", " 1")])
def test_exponents_nan_and_non_ascii_digits_are_not_decimal_strings(field: str,
                                                                     value: str) -> None:
    assert errors_of(limit(**{field: value})) == [((field,), "decimal_parsing")]


def test_market_order_has_no_price_and_zero_ticks() -> None:
    order = OrderRequest.model_validate(
        {"symbol": "BTC-USD", "side": "sell", "type": "market", "timeInForce": "ioc",
         "quantity": "1"})
    assert order.price is None
    assert on_grid(order) == (0, 10000)


def test_fields_are_camel_case_on_the_wire() -> None:
    order = OrderRequest.model_validate(limit(timeInForce="day", clientOrderId="a.B:1-_",
                                              postOnly=True))
    assert (order.time_in_force, order.client_order_id, order.post_only) == \
        (TimeInForce.DAY, "a.B:1-_", True)
    assert Accepted(order_id="7", client_order_id="c", duplicate=False).model_dump(by_alias=True) \
        == {"orderId": "7", "clientOrderId": "c", "status": "pending_new", "duplicate": False}
    assert set(InstrumentView.of(BTC).model_dump(by_alias=True)) == \
        {"symbol", "tickSize", "lotSize", "minPrice", "maxPrice", "maxQuantity"}


def test_limit_order_without_price_names_price() -> None:
    body = limit()
    del body["price"]
    assert errors_of(body) == [(("price",), "price_required")]


def test_market_order_with_price_names_price() -> None:
    assert errors_of(limit(type="market")) == [(("price",), "price_not_allowed")]


@pytest.mark.parametrize("order_type", ["market"])
def test_post_only_on_a_non_limit_order_names_post_only(order_type: str) -> None:
    body = limit(type=order_type, postOnly=True)
    del body["price"]
    assert errors_of(body) == [(("postOnly",), "post_only_requires_limit")]


@pytest.mark.parametrize("time_in_force", ["ioc", "fok"])
def test_post_only_on_an_order_that_never_rests_names_post_only(time_in_force: str) -> None:
    assert errors_of(limit(timeInForce=time_in_force, postOnly=True)) == [
        (("postOnly",), "post_only_requires_resting")]


@pytest.mark.parametrize("time_in_force", [{"timeInForce": "gtc"}, {"timeInForce": "day"}, {}])
def test_post_only_on_an_order_that_rests_is_good(time_in_force: dict[str, str]) -> None:
    assert request_errors(limit(postOnly=True, **time_in_force)) == []


@pytest.mark.parametrize(("field", "value", "kind"), [
    ("side", "hold", "enum"),
    ("type", "stop", "enum"),
    ("timeInForce", "gtd", "enum"),
    ("price", 100.5, "string_type"),  # a JSON number is refused: money is never a float
    ("quantity", 1, "string_type"),
    ("price", "abc", "decimal_parsing"),
    ("price", "NaN", "decimal_parsing"),
    ("quantity", "Infinity", "decimal_parsing"),
    ("quantity", "1" * 41, "string_too_long"),
    ("clientOrderId", "", "string_pattern_mismatch"),
    ("clientOrderId", "has space", "string_pattern_mismatch"),
    ("clientOrderId", "x" * 64, "string_pattern_mismatch"),
    ("postOnly", "maybe", "bool_parsing"),
    ("symbol", "", "string_too_short"),
    ("account", 2, "extra_forbidden"),
])
def test_malformed_field_is_named_with_the_reason(field: str, value: Any, kind: str) -> None:
    assert errors_of(limit(**{field: value})) == [((field,), kind)]


@pytest.mark.parametrize("field", ["symbol", "side", "quantity"])
def test_missing_required_field_is_named(field: str) -> None:
    body = limit()
    del body[field]
    assert errors_of(body) == [((field,), "missing")]


@pytest.mark.parametrize(("field", "value", "kind"), [
    ("price", "100.005", "off_tick"),
    ("price", "0", "not_positive"),
    ("price", "-1.00", "not_positive"),
    ("price", "50.001", "off_tick"),
    ("price", "0.001", "price_out_of_band"),
    ("price", "1000000.01", "price_out_of_band"),
    ("price", "1" + "0" * 30, "price_out_of_band"),  # checked before the division overflows
    ("quantity", "0.00005", "off_lot"),
    ("quantity", "0", "not_positive"),
    ("quantity", "-0.5", "not_positive"),
    ("quantity", "1000.0001", "quantity_too_large"),
    ("quantity", "9" * 39, "quantity_too_large"),
])
def test_value_off_the_instruments_grid_or_limits_is_named(field: str, value: str,
                                                            kind: str) -> None:
    errors = grid_errors_of(limit(**{field: value}))
    assert [(e["loc"], e["type"]) for e in errors] == [(("body", field), kind)]
    assert value in errors[0]["msg"]


def test_off_tick_message_says_the_value_and_the_tick() -> None:
    [error] = grid_errors_of(limit(price="100.005"))
    assert error["msg"] == "price 100.005 is not a multiple of 0.01"


def test_price_below_the_band_is_out_of_band() -> None:
    instrument = Instrument(**(BTC.model_dump() | {"min_price": "10.00"}))
    [error] = grid_errors_of(limit(price="9.99"), instrument)
    assert error["type"] == "price_out_of_band"


def test_every_bad_field_is_named_at_once() -> None:
    errors = grid_errors_of(limit(price="100.005", quantity="0.00001"))
    assert {e["loc"][1] for e in errors} == {"price", "quantity"}


def test_whole_lot_instrument_refuses_fractional_quantity() -> None:
    [error] = grid_errors_of(limit(symbol="AAPL", quantity="1.5"), AAPL)
    assert error["type"] == "off_lot"
