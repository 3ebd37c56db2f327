"""Cancel, replace, order lists, trades, metrics and backpressure, against the gateway
in-process with a real Redis and a real PostgreSQL (no engine: what is queued is read
back from the streams, what is reported is written to Postgres as the writer would)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from venue.api.order_rules import ECHO_ITEMS
from venue.contract.config import VenueConfig
from venue.enginepb import engine_pb2
from venue.contract.keys import Keys

if TYPE_CHECKING:
    from conftest import Gateway

pytestmark = pytest.mark.integration

VENUE = VenueConfig()
KEYS = Keys(VENUE.name)
BTC = VENUE.by_symbol["BTC-USD"]
ETH = VENUE.by_symbol["ETH-USD"]
AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


async def post_order(gateway: Gateway, key: str | None = None,
                     **overrides: Any) -> dict[str, Any]:
    response = await gateway.client.post("/v1/orders", headers=gateway.auth(key),
                                         json=limit_order(**overrides))
    assert response.status_code == 202, response.text
    return response.json()


def limit_order(**overrides: Any) -> dict[str, Any]:
    return {"symbol": "BTC-USD", "side": "buy", "price": "100.00", "quantity": "1.5",
            "clientOrderId": "alice-1"} | overrides


async def insert_order_row(db: asyncpg.Connection, *, order_id: int, account_id: int,
                           status: str = "new", instrument_id: int = BTC.id,
                           client_order_id: str | None = None, cum_qty: int = 0,
                           quantity: int = 15000, price: int = 10000) -> None:
    """An order row as the writer leaves it (prices in ticks, quantities in lots)."""
    leaves = 0 if status in ("filled", "canceled", "rejected", "expired") else quantity - cum_qty
    await db.execute(
        "INSERT INTO orders (order_id, client_order_id, account_id, instrument_id, side, type, "
        "time_in_force, post_only, price, quantity, status, cum_qty, leaves_qty, cum_notional, "
        "reject_reason, partition, last_sequence, created_at, updated_at) VALUES "
        "($1, $2, $3, $4, 'buy', 'limit', 'gtc', false, $5, $6, $7, $8, $9, $10, NULL, 0, "
        "$1, $11, $11)",
        order_id, client_order_id or f"row-{order_id}", account_id, instrument_id, price,
        quantity, status, cum_qty, leaves, cum_qty * price, AT)


# --- cancel ------------------------------------------------------------------------------

async def test_cancel_of_a_queued_order_is_queued_behind_it_on_its_shard(
        gateway: Gateway) -> None:
    accepted = await post_order(gateway)
    response = await gateway.client.delete(f"/v1/orders/{accepted['orderId']}",
                                           headers=gateway.auth())
    assert response.status_code == 202, response.text
    assert response.json() == {"orderId": accepted["orderId"], "clientOrderId": "alice-1",
                               "status": "pending_cancel"}
    new, cancel = await gateway.commands(VENUE.shard_of(BTC))
    assert new.WhichOneof("body") == "new_order"
    assert cancel.cancel == engine_pb2.CancelOrder(
        order_id=int(accepted["orderId"]), account_id=gateway.account_id,
        instrument_id=BTC.id)


async def test_cancel_by_client_order_id_finds_queued_and_reported_orders(
        gateway: Gateway) -> None:
    queued = await post_order(gateway, clientOrderId="queued-1")
    await insert_order_row(gateway.db, order_id=9001, account_id=gateway.account_id,
                           client_order_id="rested-1", instrument_id=ETH.id)
    for client_order_id, order_id, instrument in (("queued-1", queued["orderId"], BTC),
                                                  ("rested-1", "9001", ETH)):
        response = await gateway.client.delete(f"/v1/orders/by-client-id/{client_order_id}",
                                               headers=gateway.auth())
        assert response.status_code == 202, response.text
        assert response.json()["orderId"] == order_id
        last = (await gateway.commands(VENUE.shard_of(instrument)))[-1]
        assert (last.cancel.order_id, last.cancel.instrument_id) == (int(order_id),
                                                                      instrument.id)


async def test_order_without_client_order_id_is_cancelled_by_its_order_id_as_client_id(
        gateway: Gateway) -> None:
    body = limit_order()
    del body["clientOrderId"]
    response = await gateway.client.post("/v1/orders", headers=gateway.auth(), json=body)
    order_id = response.json()["orderId"]
    cancel = await gateway.client.delete(f"/v1/orders/by-client-id/{order_id}",
                                         headers=gateway.auth())
    assert cancel.status_code == 202, cancel.text


async def test_another_accounts_order_cannot_be_cancelled_or_replaced_and_reads_404(
        gateway: Gateway) -> None:
    queued = await post_order(gateway)
    await insert_order_row(gateway.db, order_id=9001, account_id=gateway.account_id)
    before = await gateway.stream_lengths()
    bob = gateway.auth(gateway.other_key)
    for path in (f"/v1/orders/{queued['orderId']}", "/v1/orders/9001",
                 "/v1/orders/by-client-id/alice-1", "/v1/orders/by-client-id/row-9001"):
        cancel = await gateway.client.delete(path, headers=bob)
        replace = await gateway.client.patch(path, headers=bob, json={"quantity": "0.5"})
        assert (cancel.status_code, replace.status_code) == (404, 404), path
        assert "not found" in cancel.json()["detail"]
        assert cancel.json()["reason"] == replace.json()["reason"] == "unknown_order"
    assert await gateway.stream_lengths() == before


async def test_unknown_order_is_404_and_queues_nothing(gateway: Gateway) -> None:
    for path in ("/v1/orders/424242", "/v1/orders/by-client-id/nobody"):
        assert (await gateway.client.delete(path, headers=gateway.auth())).status_code == 404
    assert await gateway.stream_lengths() == [0] * VENUE.shards


@pytest.mark.parametrize("status", ["filled", "canceled", "rejected", "expired"])
async def test_a_done_order_is_409_and_nothing_is_queued(gateway: Gateway,
                                                         status: str) -> None:
    await insert_order_row(gateway.db, order_id=9001, account_id=gateway.account_id,
                           status=status)
    cancel = await gateway.client.delete("/v1/orders/9001", headers=gateway.auth())
    replace = await gateway.client.patch("/v1/orders/9001", headers=gateway.auth(),
                                         json={"price": "99.00"})
    assert (cancel.status_code, replace.status_code) == (409, 409)
    assert status in cancel.json()["detail"]
    for refused in (cancel, replace):  # as the engine's cancel-reject says it
        assert refused.json() | {"orderId": "9001", "status": status,
                                 "reason": "too_late_to_cancel"} == refused.json()
    assert await gateway.stream_lengths() == [0] * VENUE.shards


async def test_cancel_and_replace_require_an_api_key(gateway: Gateway) -> None:
    await post_order(gateway)
    assert (await gateway.client.delete("/v1/orders/1")).status_code == 401
    assert (await gateway.client.patch("/v1/orders/1", json={"price": "1.00"})).status_code \
        == 401


# --- replace -----------------------------------------------------------------------------

async def test_replace_queues_the_new_terms_keeping_what_was_not_given(
        gateway: Gateway) -> None:
    accepted = await post_order(gateway)
    response = await gateway.client.patch(f"/v1/orders/{accepted['orderId']}",
                                          headers=gateway.auth(), json={"quantity": "0.5"})
    assert response.status_code == 202, response.text
    assert response.json() == {"orderId": accepted["orderId"], "clientOrderId": "alice-1",
                               "status": "pending_replace"}
    by_client_id = await gateway.client.patch("/v1/orders/by-client-id/alice-1",
                                              headers=gateway.auth(), json={"price": "99.50"})
    assert by_client_id.status_code == 202, by_client_id.text
    _, smaller, cheaper = await gateway.commands(VENUE.shard_of(BTC))
    assert smaller.replace == engine_pb2.ReplaceOrder(
        order_id=int(accepted["orderId"]), account_id=gateway.account_id,
        instrument_id=BTC.id, price=0, quantity=5000)
    # A term not given is sent as 0, kept by the engine as it holds it: the gateway's
    # terms predate the first replace, and filling them in would undo it.
    assert (cheaper.replace.price, cheaper.replace.quantity) == (9950, 0)


BAD_REPLACES = [
    pytest.param({"price": "100.005"}, "price", "off_tick", id="price-off-tick"),
    pytest.param({"quantity": "0.00001"}, "quantity", "off_lot", id="quantity-off-lot"),
    pytest.param({"price": "1000000.01"}, "price", "price_out_of_band", id="price-above-band"),
    pytest.param({"quantity": "1000.0001"}, "quantity", "quantity_too_large",
                 id="quantity-over-max"),
    pytest.param({"quantity": "0"}, "quantity", "not_positive", id="quantity-zero"),
    pytest.param({"quantity": "0.2"}, "quantity", "replace_below_filled",
                 id="quantity-below-filled"),
    pytest.param({"price": "abc"}, "price", "decimal_parsing", id="price-not-a-number"),
    pytest.param({"quantity": "NaN"}, "quantity", "decimal_parsing", id="quantity-nan"),
    pytest.param({"price": "\u0665\u0660.00"}, "price", "decimal_parsing",
                 id="price-arabic-indic-digits"),
    pytest.param({"price": 99.5}, "price", "string_type", id="price-as-json-number"),
    pytest.param({"side": "sell"}, "side", "extra_forbidden", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "field", "kind"), BAD_REPLACES)
async def test_bad_replace_is_422_naming_the_field_and_queues_nothing(
        gateway: Gateway, body: dict[str, Any], field: str, kind: str) -> None:
    # 0.3 of 1.5 filled: a new total of 0.2 is below it.
    await insert_order_row(gateway.db, order_id=9001, account_id=gateway.account_id,
                           status="partially_filled", cum_qty=3000)
    response = await gateway.client.patch("/v1/orders/9001", headers=gateway.auth(),
                                          json=body)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", field], kind)
    assert await gateway.stream_lengths() == [0] * VENUE.shards


async def test_replace_without_new_terms_is_422(gateway: Gateway) -> None:
    await insert_order_row(gateway.db, order_id=9001, account_id=gateway.account_id)
    response = await gateway.client.patch("/v1/orders/9001", headers=gateway.auth(), json={})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "nothing_to_replace"


# --- order lists -------------------------------------------------------------------------

async def test_order_list_filters_by_status_and_symbol_and_pages_newest_first(
        gateway: Gateway) -> None:
    statuses = {9001: "new", 9002: "filled", 9003: "partially_filled", 9004: "canceled",
                9005: "new"}
    for order_id, status in statuses.items():
        await insert_order_row(gateway.db, order_id=order_id, account_id=gateway.account_id,
                               status=status, cum_qty=3000 if status == "partially_filled"
                               else 15000 if status == "filled" else 0,
                               instrument_id=ETH.id if order_id == 9005 else BTC.id)
    await insert_order_row(gateway.db, order_id=9006, account_id=gateway.other_account_id)

    async def listed(**params: Any) -> dict[str, Any]:
        response = await gateway.client.get("/v1/orders", headers=gateway.auth(),
                                            params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def ids(page: dict[str, Any]) -> list[str]:
        return [order["orderId"] for order in page["orders"]]

    assert ids(await listed()) == ["9005", "9004", "9003", "9002", "9001"]
    assert ids(await listed(status="open")) == ["9005", "9003", "9001"]
    assert ids(await listed(status="open", symbol="BTC-USD")) == ["9003", "9001"]
    assert ids(await listed(status="filled")) == ["9002"]
    assert ids(await listed(status="canceled")) == ["9004"]
    first = await listed(limit=2)
    assert (ids(first), first["nextAfter"]) == (["9005", "9004"], "9004")
    second = await listed(limit=2, after=first["nextAfter"])
    third = await listed(limit=2, after=second["nextAfter"])
    assert (ids(second), ids(third), third["nextAfter"]) == (["9003", "9002"], ["9001"], None)
    order = (await listed(status="open", symbol="BTC-USD"))["orders"][0]
    assert order | {"cumQty": "0.3000", "leavesQty": "1.2000", "price": "100.00",
                    "status": "partially_filled"} == order


async def test_order_list_rejects_an_unknown_symbol_or_status(gateway: Gateway) -> None:
    for params, field in (({"symbol": "DOGE-USD"}, "symbol"), ({"status": "sleeping"},
                                                               "status")):
        response = await gateway.client.get("/v1/orders", headers=gateway.auth(),
                                            params=params)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", field]


async def test_a_query_parameter_the_route_does_not_take_or_given_twice_is_refused(
        gateway: Gateway) -> None:
    """A misspelt filter is named, not ignored: `?clientOrderId=` on the order list
    would otherwise list every order as if it were the one asked for."""
    queued = await post_order(gateway, clientOrderId="asked-for")
    before = await gateway.stream_lengths()
    body = {"symbol": "BTC-USD", "side": "buy", "type": "limit", "price": "100.00",
            "quantity": "1.0000", "clientOrderId": "with-a-query"}
    for method, path, params, unknown in (
            ("GET", "/v1/orders", {"clientOrderId": "asked-for"}, ["clientOrderId"]),
            ("GET", "/v1/orders", {"status": "open", "stauts": "x", "sym": "y"},
             ["stauts", "sym"]),
            ("GET", f"/v1/orders/{queued['orderId']}", {"verbose": "1"}, ["verbose"]),
            ("DELETE", f"/v1/orders/{queued['orderId']}", {"force": "1"}, ["force"]),
            ("POST", "/v1/orders", {"dryRun": "true"}, ["dryRun"]),
            ("POST", "/v1/orders/batch", {"atomic": "1"}, ["atomic"]),
            ("GET", "/v1/books/BTC-USD", {"levels": "5"}, ["levels"]),
            ("GET", "/v1/trades/BTC-USD", {"limit": "2", "since": "0"}, ["since"]),
            ("GET", "/v1/candles/BTC-USD", {"interval": "1m", "form": "0"}, ["form"]),
            ("GET", "/v1/instruments", {"symbol": "BTC-USD"}, ["symbol"])):
        response = await gateway.client.request(
            method, path, params=params, headers=gateway.auth(),
            json=[body] if path.endswith("batch") else body if method == "POST" else None)
        assert response.status_code == 422, (method, path, response.text)
        errors = response.json()["detail"]
        assert [e["loc"] for e in errors] == [["query", name] for name in unknown], errors
        assert all(e["type"] == "extra_forbidden" for e in errors)
        assert all(f"unknown query parameter {e['loc'][1]!r}" in e["msg"] for e in errors)
    # Thousands of them get a few errors and a count, as a body's unknown fields do (an
    # answer the size of what was sent took 79 ms each).
    many = await gateway.client.get("/v1/books/BTC-USD",
                                    params={f"p{i}": "1" for i in range(5200)})
    assert many.status_code == 422 and len(many.content) < 8192, len(many.content)
    errors = many.json()["detail"]
    assert [e["loc"] for e in errors] == [["query", f"p{i}"] for i in range(ECHO_ITEMS)] + [
        ["query"]]
    assert errors[-1]["msg"] == f"and {5200 - ECHO_ITEMS} more query parameters this route " \
                                "does not take"
    taken = (await gateway.client.get("/v1/orders", headers=gateway.auth(),
                                      params={"bogus": "1"})).json()["detail"][0]["msg"]
    assert taken == "unknown query parameter 'bogus': this route takes after, limit, " \
                    "status, symbol", taken
    # A parameter given twice is refused, naming it: the last used to win, whichever the
    # client meant.
    for path, params in (("/v1/orders", [("status", "open"), ("status", "all"),
                                         ("limit", "5")]),
                         ("/v1/trades/BTC-USD", [("limit", "2"), ("limit", "3")])):
        response = await gateway.client.get(path, params=params, headers=gateway.auth())
        assert response.status_code == 422, response.text
        [problem] = response.json()["detail"]
        name, first = params[0]
        assert problem == {"loc": ["query", name], "type": "repeated_parameter",
                           "msg": f"query parameter {name!r} is given 2 times: give it once",
                           "input": [first, params[1][1]]}, problem
    # Without a key it is 401 first, whatever else is wrong.
    for method, path in (("GET", "/v1/orders"), ("DELETE", "/v1/orders/5"),
                         ("POST", "/v1/orders/batch")):
        response = await gateway.client.request(method, path, params={"bogus": "1"})
        assert response.status_code == 401, (method, path, response.text)
    assert await gateway.stream_lengths() == before  # nothing queued, nothing cancelled
    # The parameters a route takes still work, and a route with none takes none.
    listed = await gateway.client.get("/v1/orders", headers=gateway.auth(),
                                      params={"status": "open", "limit": 5})
    assert listed.status_code == 200, listed.text
    assert (await gateway.client.get("/v1/instruments")).status_code == 200


async def test_an_integer_in_a_path_or_query_is_ascii_digits_only(gateway: Gateway) -> None:
    """`DELETE /v1/orders/{id}.0` cancelled the order: FastAPI parses integers laxly."""
    queued = await post_order(gateway)
    before = await gateway.stream_lengths()
    for written in (f"{queued['orderId']}.0", f"+{queued['orderId']}", f"%20{queued['orderId']}",
                    f"{queued['orderId']}e0", "\u0665"):
        for method in ("GET", "DELETE"):
            response = await gateway.client.request(method, f"/v1/orders/{written}",
                                                    headers=gateway.auth())
            assert response.status_code == 422, (method, written, response.text)
            [problem] = response.json()["detail"]
            assert (problem["loc"], problem["type"]) == (["path", "order_id"], "int_parsing")
    for path, name, written in (("/v1/orders", "limit", "5.0"), ("/v1/orders", "after", "+1"),
                                ("/v1/orders", "limit", " 5"), ("/v1/trades/BTC-USD", "limit",
                                                                "\u0665")):
        response = await gateway.client.get(path, headers=gateway.auth(), params={name: written})
        assert response.status_code == 422, (path, name, written, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", name]
    assert await gateway.stream_lengths() == before  # nothing cancelled
    assert (await gateway.client.get(f"/v1/orders/{queued['orderId']}",
                                     headers=gateway.auth())).status_code == 200
    assert (await gateway.client.get("/v1/orders", headers=gateway.auth(),
                                     params={"limit": "05"})).status_code == 200


# --- trades ------------------------------------------------------------------------------

async def test_trades_are_the_latest_first_as_decimal_strings(gateway: Gateway) -> None:
    for trade_id, (price, quantity, side) in enumerate(
            [(10000, 5000, "sell"), (10001, 2500, "buy"), (9999, 10000, "sell")], start=1):
        await gateway.db.execute(
            "INSERT INTO trades (partition, trade_id, sequence, instrument_id, price, quantity, "
            "buy_order_id, sell_order_id, aggressor_side, engine_time) "
            "VALUES (0, $1, $2, $3, $4, $5, 1, 2, $6, $7)",
            trade_id, 10 * trade_id, BTC.id, price, quantity, side,
            AT + timedelta(seconds=trade_id))
    response = await gateway.client.get("/v1/trades/BTC-USD", headers=gateway.auth(),
                                        params={"limit": 2})
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"tradeId": "3", "price": "99.99", "quantity": "1.0000", "aggressorSide": "sell",
         "time": "2025-01-02T03:04:08Z", "sequence": 30},
        {"tradeId": "2", "price": "100.01", "quantity": "0.2500", "aggressorSide": "buy",
         "time": "2025-01-02T03:04:07Z", "sequence": 20}]
    assert (await gateway.client.get("/v1/trades/ETH-USD", headers=gateway.auth())).json() == []
    unknown = await gateway.client.get("/v1/trades/DOGE-USD", headers=gateway.auth())
    assert unknown.status_code == 404
    # Market data is public: the same answer without a key.
    assert (await gateway.client.get("/v1/trades/BTC-USD", params={"limit": 2})).json() \
        == response.json()


async def test_book_of_an_unknown_symbol_is_404(gateway: Gateway) -> None:
    response = await gateway.client.get("/v1/books/DOGE-USD", headers=gateway.auth())
    assert response.status_code == 404
    assert (await gateway.client.get("/v1/books/DOGE-USD")).status_code == 404  # public


# --- metrics -----------------------------------------------------------------------------

def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    wanted = {f'{key}="{value}"' for key, value in labels.items()}
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        series_name, _, series_labels = series.partition("{")
        if series_name == name and set(filter(None, series_labels.rstrip("}").split(","))) \
                == wanted:
            return float(value)
    return 0.0


async def test_metrics_count_accepted_and_rejected_orders_and_time_requests(
        gateway: Gateway) -> None:
    before = (await gateway.client.get("/metrics")).text
    await post_order(gateway, clientOrderId="m-1")
    await post_order(gateway, clientOrderId="m-1")
    await gateway.client.post("/v1/orders", headers=gateway.auth(),
                              json=limit_order(price="100.005"))
    await gateway.app.state.shard_lag.refresh()
    response = await gateway.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("venue_orders_accepted_total", channel="http") == 1
    assert grew("venue_orders_duplicate_total", channel="http") == 1
    assert grew("venue_orders_rejected_total", channel="http", reason="off_tick") == 1
    assert grew("venue_http_request_duration_seconds_count", method="POST",
                handler="submit_order") == 3
    assert sample(after, "venue_shard_lag", shard=str(VENUE.shard_of(BTC))) == 1
    assert sample(after, "venue_shard_refusing", shard=str(VENUE.shard_of(BTC))) == 0


# --- backpressure ------------------------------------------------------------------------

async def test_a_shard_over_its_lag_limit_answers_429_with_retry_after_and_queues_nothing(
        tiny_lag_limit: int, gateway: Gateway) -> None:
    for number in range(tiny_lag_limit + 1):  # no submitter runs: every entry is lag
        await post_order(gateway, clientOrderId=f"fill-{number}")
    await gateway.app.state.shard_lag.refresh()
    before = await gateway.stream_lengths()

    response = await gateway.client.post("/v1/orders", headers=gateway.auth(),
                                         json=limit_order(clientOrderId="one-too-many"))
    assert response.status_code == 429, response.text
    shard = VENUE.shard_of(BTC)
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert (body["shard"], body["retryAfter"]) == (shard, int(response.headers["retry-after"]))
    assert f"shard {shard}" in body["detail"]
    assert await gateway.stream_lengths() == before
    assert await gateway.app.state.order_queue.claimed_order_id(
        gateway.account_id, "one-too-many") is None
    # Another shard takes orders; a cancel is never refused: it only lowers risk.
    other = await post_order(gateway, symbol="ETH-USD", clientOrderId="eth-1")
    assert other["duplicate"] is False
    cancel = await gateway.client.delete("/v1/orders/by-client-id/fill-0",
                                         headers=gateway.auth())
    assert cancel.status_code == 202

    metrics = (await gateway.client.get("/metrics")).text
    assert sample(metrics, "venue_shard_refusing", shard=str(shard)) == 1
    assert sample(metrics, "venue_orders_rejected_total", channel="http",
                  reason="shard_busy") >= 1


async def test_too_many_orders_awaiting_postgres_refuse_every_new_order_with_retry_after(
        tiny_unpersisted_limit: int, gateway: Gateway) -> None:
    for number in range(tiny_unpersisted_limit + 1):  # no writer runs: none is persisted
        await post_order(gateway, clientOrderId=f"fill-{number}")
    await gateway.app.state.shard_lag.refresh()
    before = await gateway.stream_lengths()

    for symbol in ("BTC-USD", "ETH-USD"):  # every shard refuses
        response = await gateway.client.post(
            "/v1/orders", headers=gateway.auth(),
            json=limit_order(symbol=symbol, clientOrderId=f"refused-{symbol}"))
        assert response.status_code == 429, response.text
        body = response.json()
        assert body["reason"] == "persistence_behind"
        assert body["retryAfter"] == int(response.headers["retry-after"]) >= 1
        assert "3 orders await Postgres" in body["detail"]
    batch = await gateway.client.post("/v1/orders/batch", headers=gateway.auth(),
                                      json={"orders": [limit_order(clientOrderId="b-1")]})
    assert batch.status_code == 429 and int(batch.headers["retry-after"]) >= 1
    assert batch.json()["reason"] == "persistence_behind"
    assert await gateway.stream_lengths() == before
    assert await gateway.app.state.order_queue.claimed_order_id(
        gateway.account_id, "refused-BTC-USD") is None
    # A cancel is never refused: it only lowers risk.
    cancel = await gateway.client.delete("/v1/orders/by-client-id/fill-0",
                                         headers=gateway.auth())
    assert cancel.status_code == 202
    metrics = (await gateway.client.get("/metrics")).text
    assert sample(metrics, "venue_unpersisted_orders") == 3
    assert sample(metrics, "venue_unpersisted_refusing") == 1
    assert sample(metrics, "venue_orders_rejected_total", channel="batch",
                  reason="persistence_behind") >= 1

    # The writer stores two of them: orders are taken again.
    shard = VENUE.shard_of(BTC)
    entry_id, fields = (await gateway.redis.xrange(KEYS.orders(shard)))[1]
    assert fields[b"n"] == b"2"
    await gateway.redis.hset(KEYS.persisted_marks, shard, f"{entry_id.decode()} 2")
    await gateway.app.state.shard_lag.refresh()
    await post_order(gateway, clientOrderId="welcome-back")


async def test_a_shard_takes_orders_again_once_its_lag_is_back_under_the_limit(
        tiny_lag_limit: int, gateway: Gateway) -> None:
    for number in range(tiny_lag_limit + 1):
        await post_order(gateway, clientOrderId=f"fill-{number}")
    shard_lag = gateway.app.state.shard_lag
    await shard_lag.refresh()
    shard = VENUE.shard_of(BTC)
    assert shard_lag.shard_refusal(shard) is not None
    # The submitters confirm everything: the group's position is the stream's end.
    stream = KEYS.orders(shard)
    [(last_id, _)] = await gateway.redis.xrevrange(stream, count=1)
    await gateway.redis.xgroup_create(stream, "submitters", id=last_id)
    await shard_lag.refresh()
    assert shard_lag.shard_refusal(shard) is None
    await post_order(gateway, clientOrderId="welcome-back")
