"""The order gateway against a real Redis and a real PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from venue.contract import health
from venue.accounts import account_for_key, issue_key
from venue.api.app import create_app
from venue.api.fast_lane import OrderFastLane
from venue.contract.config import Settings, VenueConfig
from venue.enginepb import engine_pb2
from venue.contract.entries import split_frames
from venue.contract.keys import Keys

if TYPE_CHECKING:
    from conftest import Gateway

pytestmark = pytest.mark.integration

VENUE = VenueConfig()
KEYS = Keys(VENUE.name)
BTC = VENUE.by_symbol["BTC-USD"]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def post_order(gateway: Gateway, body: dict[str, Any], key: str | None = None,
                     **headers: str) -> httpx.Response:
    return await gateway.client.post("/v1/orders", json=body,
                                     headers=gateway.auth(key) | headers)


async def get_order(gateway: Gateway, order_id: str | int,
                    key: str | None = None) -> httpx.Response:
    return await gateway.client.get(f"/v1/orders/{order_id}", headers=gateway.auth(key))


def limit_order(**overrides: Any) -> dict[str, Any]:
    return {"symbol": "BTC-USD", "side": "buy", "price": "64250.50", "quantity": "0.25",
            "clientOrderId": "alice-1"} | overrides


def without(body: dict[str, Any], field: str) -> dict[str, Any]:
    return {name: value for name, value in body.items() if name != field}


# --- authentication ---------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/orders"), ("POST", "/v1/orders"), ("GET", "/v1/orders/1"),
    ("DELETE", "/v1/orders/1"), ("POST", "/v1/orders/batch")])
async def test_v1_route_without_api_key_is_401_with_bearer_challenge(
        gateway: Gateway, method: str, path: str) -> None:
    response = await gateway.client.request(method, path, json=limit_order())
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert await gateway.stream_lengths() == [0] * VENUE.shards


@pytest.mark.parametrize("authorization", [
    "Bearer tv_not-a-key", "Basic YWxpY2U6c2VjcmV0", "Bearer", "tv_bare-key"])
async def test_v1_route_with_bad_api_key_is_401(gateway: Gateway, authorization: str) -> None:
    response = await gateway.client.post("/v1/orders", json=limit_order(),
                                         headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert await gateway.stream_lengths() == [0] * VENUE.shards


async def test_account_keys_are_stored_hashed_and_revoked_keys_name_nobody(
        gateway: Gateway) -> None:
    second_key = await issue_key(gateway.db, gateway.account_id)
    assert second_key.startswith("tv_") and len(second_key) == 35
    assert await account_for_key(gateway.db, second_key) == gateway.account_id
    stored = await gateway.db.fetch("SELECT key_hash FROM api_keys WHERE account_id = $1",
                                    gateway.account_id)
    assert {row["key_hash"] for row in stored} == \
        {hashlib.sha256(key.encode()).digest() for key in (gateway.key, second_key)}
    await gateway.db.execute("UPDATE api_keys SET revoked_at = now()")
    assert await account_for_key(gateway.db, second_key) is None
    assert await account_for_key(gateway.db, gateway.key) is None


def test_order_operations_require_an_api_key_and_market_data_is_public_in_openapi() -> None:
    app = create_app(Settings(redis_url="redis://unused", database_url="postgresql://unused"))
    operations = [(path, method, operation)
                  for path, methods in app.openapi()["paths"].items()
                  for method, operation in methods.items() if path.startswith("/v1/")]
    public = {"/v1/instruments", "/v1/books/{symbol}", "/v1/trades/{symbol}",
              "/v1/candles/{symbol}"}
    assert {(path, method) for path, method, _ in operations} >= {
        ("/v1/orders", "post"), ("/v1/orders/{order_id}", "get"), ("/v1/instruments", "get"),
        ("/v1/candles/{symbol}", "get")}
    for path, method, operation in operations:
        if path in public:
            assert not operation.get("security"), (method, path)
        else:
            assert operation.get("security") == [{"ApiKey": []}], (method, path)


# --- order entry: bad input changes nothing ------------------------------------------

BAD_ORDERS = [
    pytest.param(limit_order(symbol="DOGE-USD"), "symbol", "unknown_symbol", id="unknown-symbol"),
    pytest.param(limit_order(price="100.005"), "price", "off_tick", id="price-off-tick"),
    pytest.param(limit_order(quantity="0.00001"), "quantity", "off_lot", id="quantity-off-lot"),
    pytest.param(limit_order(quantity="0"), "quantity", "not_positive", id="quantity-zero"),
    pytest.param(limit_order(quantity="-1"), "quantity", "not_positive", id="quantity-negative"),
    pytest.param(limit_order(quantity="1000.0001"), "quantity", "quantity_too_large",
                 id="quantity-over-max"),
    pytest.param(limit_order(price="1000000.01"), "price", "price_out_of_band",
                 id="price-above-band"),
    pytest.param(limit_order(price="0.001"), "price", "price_out_of_band", id="price-below-band"),
    pytest.param(limit_order(type="market"), "price", "price_not_allowed", id="price-on-market"),
    pytest.param(without(limit_order(), "price"), "price", "price_required",
                 id="limit-without-price"),
    pytest.param(without(limit_order(type="market", postOnly=True), "price"), "postOnly",
                 "post_only_requires_limit", id="post-only-on-market"),
    pytest.param(limit_order(timeInForce="ioc", postOnly=True), "postOnly",
                 "post_only_requires_resting", id="post-only-ioc"),
    pytest.param(without(limit_order(), "quantity"), "quantity", "missing", id="missing-quantity"),
    pytest.param(limit_order(price=64250.5), "price", "string_type", id="price-as-json-number"),
    pytest.param(limit_order(clientOrderId="no spaces"), "clientOrderId",
                 "string_pattern_mismatch", id="bad-client-order-id"),
    *(pytest.param(limit_order(**{field: value}), field, "decimal_parsing",
                   id=f"{field}-{name}")
      for field in ("price", "quantity")
      for name, value in (("nan", "NaN"), ("infinity", "Infinity"), ("exponent", "1e2"),
                          ("arabic-indic-digits", "\u0665\u0660.00"), ("spaces", " 5 "),
                          ("fullwidth-digits", "\uff15"))),
]


@pytest.mark.parametrize(("body", "field", "kind"), BAD_ORDERS)
async def test_bad_order_is_422_naming_the_field_and_queues_nothing(
        gateway: Gateway, body: dict[str, Any], field: str, kind: str) -> None:
    response = await post_order(gateway, body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [(error["loc"], error["type"]) for error in detail] == [(["body", field], kind)]
    assert detail[0]["msg"]
    assert await gateway.stream_lengths() == [0] * VENUE.shards
    assert await gateway.redis.keys("*") == []


async def test_off_tick_error_says_the_value_and_the_tick(gateway: Gateway) -> None:
    response = await post_order(gateway, limit_order(price="100.005"))
    assert response.json() == {"detail": [{
        "loc": ["body", "price"], "msg": "price 100.005 is not a multiple of 0.01",
        "type": "off_tick", "input": "100.005"}]}


async def test_malformed_json_is_422_and_queues_nothing(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/orders", content=b'{"symbol": "BTC-USD", "side": ',
        headers=gateway.auth() | {"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert await gateway.redis.keys("*") == []


async def test_an_empty_body_is_422_saying_so(gateway: Gateway) -> None:
    headers = gateway.auth() | {"Content-Type": "application/json"}
    for path in ("/v1/orders", "/v1/orders/batch"):
        for body in (b"", b" \n\t " * 1000):
            response = await gateway.client.post(path, headers=headers, content=body)
            assert response.status_code == 422, response.text
            assert response.json()["detail"][0]["msg"] == "empty: a JSON object is expected"
    assert await gateway.redis.keys("*") == []


async def test_a_body_that_is_not_utf8_is_422_and_queues_nothing(gateway: Gateway) -> None:
    headers = gateway.auth() | {"Content-Type": "application/json"}
    response = await gateway.client.post("/v1/orders", headers=headers, content=(
        b'{"symbol": "\xfdTC-USD", "side": "buy", "price": "1", "quantity": "1"}'))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"
    # In a batch, the order that is not UTF-8 is rejected on its own, as any malformed one.
    response = await gateway.client.post("/v1/orders/batch", headers=headers, content=(
        b'{"orders": [{"symbol": "BTC-USD", "side": "b\xffy", "price": "1", "quantity": "1",'
        b' "clientOrderId": "u-1"}]}'))
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert (result["status"], result["errors"][0]["type"]) == ("rejected", "json_invalid")
    assert await gateway.redis.keys("*") == []


# --- order entry: accepted orders --------------------------------------------------------

async def test_good_order_is_202_and_one_stream_entry_holding_its_command(
        gateway: Gateway) -> None:
    response = await post_order(gateway, limit_order(timeInForce="day", postOnly=True),
                                        traceparent=TRACEPARENT)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted == {"orderId": accepted["orderId"], "clientOrderId": "alice-1",
                        "status": "pending_new", "duplicate": False}

    [(shard, _, fields)] = await gateway.stream_entries()
    assert shard == VENUE.shard_of(BTC)
    assert set(fields) == {b"cmds", b"traceparent", b"n"}
    assert fields[b"n"] == b"1"  # the shard's first new order
    assert fields[b"traceparent"] == TRACEPARENT.encode()
    [encoded] = split_frames(fields[b"cmds"])
    command = engine_pb2.Command.FromString(encoded)
    assert command.WhichOneof("body") == "new_order"
    assert command.traceparent == ""  # the entry's, which the submitter gives it
    assert (command.shard, command.stream_ms, command.stream_seq, command.entry_index) == \
        (0, 0, 0, 0)  # the submitter fills these in
    assert command.new_order == engine_pb2.NewOrder(
        order_id=int(accepted["orderId"]), client_order_id="alice-1",
        account_id=gateway.account_id, instrument_id=BTC.id, side=engine_pb2.SIDE_BUY,
        type=engine_pb2.ORDER_TYPE_LIMIT, time_in_force=engine_pb2.TIME_IN_FORCE_DAY,
        price=6425050, quantity=2500, post_only=True)


async def test_market_order_is_queued_with_zero_price(gateway: Gateway) -> None:
    response = await post_order(gateway, 
        {"symbol": "AAPL", "side": "sell", "type": "market", "timeInForce": "ioc",
         "quantity": "7"})
    assert response.status_code == 202, response.text
    [(shard, _, fields)] = await gateway.stream_entries()
    assert shard == VENUE.shard_of(VENUE.by_symbol["AAPL"])
    new_order = engine_pb2.Command.FromString(split_frames(fields[b"cmds"])[0]).new_order
    assert (new_order.type, new_order.side, new_order.price, new_order.quantity) == \
        (engine_pb2.ORDER_TYPE_MARKET, engine_pb2.SIDE_SELL, 0, 7)


async def test_missing_or_invalid_traceparent_is_replaced_by_a_fresh_one(
        gateway: Gateway) -> None:
    await post_order(gateway, limit_order(clientOrderId="a"))
    await post_order(gateway, limit_order(clientOrderId="b"),
                             traceparent="00-00000000000000000000000000000000-00f067aa0ba902b7-01")
    traceparents = [fields[b"traceparent"].decode()
                    for _, _, fields in await gateway.stream_entries()]
    assert len(set(traceparents)) == 2
    for traceparent in traceparents:
        version, trace_id, parent_id, flags = traceparent.split("-")
        # Tracing is off in this gateway: a fresh context is never sampled (flags 00).
        assert (version, len(trace_id), len(parent_id), flags) == ("00", 32, 16, "00")
        assert trace_id != "0" * 32


async def test_duplicate_client_order_id_returns_the_original_order_and_queues_nothing(
        gateway: Gateway) -> None:
    first = (await post_order(gateway, limit_order())).json()
    again = await post_order(gateway, limit_order(price="1.00"))
    assert again.status_code == 202
    assert again.json() == {"orderId": first["orderId"], "clientOrderId": "alice-1",
                            "status": "pending_new", "duplicate": True}
    assert len(await gateway.stream_entries()) == 1


async def test_client_order_id_is_unique_per_account_not_per_venue(gateway: Gateway) -> None:
    mine = (await post_order(gateway, limit_order())).json()
    theirs = (await post_order(gateway, limit_order(), key=gateway.other_key)).json()
    assert theirs["duplicate"] is False
    assert theirs["orderId"] != mine["orderId"]
    assert len(await gateway.stream_entries()) == 2


async def test_order_without_client_order_id_is_known_by_its_order_id_and_never_deduplicated(
        gateway: Gateway) -> None:
    body = without(limit_order(), "clientOrderId")
    first = (await post_order(gateway, body)).json()
    second = (await post_order(gateway, body)).json()
    assert first["orderId"] != second["orderId"]
    assert first["clientOrderId"] == first["orderId"]
    assert (first["duplicate"], second["duplicate"]) == (False, False)
    commands = [engine_pb2.Command.FromString(split_frames(fields[b"cmds"])[0]).new_order
                for _, _, fields in await gateway.stream_entries()]
    assert [c.client_order_id for c in commands] == [first["orderId"], second["orderId"]]


# --- the fast lane -----------------------------------------------------------------------

def fast_lane(gateway: Gateway) -> OrderFastLane:
    lane = gateway.app.middleware_stack  # built at the first request
    while not isinstance(lane, OrderFastLane):
        lane = lane.app
    return lane


async def test_a_good_order_with_a_known_key_is_answered_outside_the_framework(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    first = await post_order(gateway, limit_order(clientOrderId="via-route"))  # learns the key

    async def framework(scope, receive, send) -> None:
        raise AssertionError(f"{scope['method']} {scope['path']} entered the framework")

    before = await samples(gateway)
    monkeypatch.setattr(fast_lane(gateway), "app", framework)
    second = await post_order(gateway, limit_order(clientOrderId="via-lane"),
                              traceparent=TRACEPARENT)
    again = await post_order(gateway, limit_order(clientOrderId="via-route"))
    assert (first.status_code, second.status_code, again.status_code) == (202, 202, 202)
    assert second.headers["content-type"] == "application/json"
    assert [response.json() for response in (first, second, again)] == [
        {"orderId": first.json()["orderId"], "clientOrderId": "via-route",
         "status": "pending_new", "duplicate": False},
        {"orderId": second.json()["orderId"], "clientOrderId": "via-lane",
         "status": "pending_new", "duplicate": False},
        {"orderId": first.json()["orderId"], "clientOrderId": "via-route",
         "status": "pending_new", "duplicate": True}]
    entries = await gateway.stream_entries()
    assert [fields[b"traceparent"] for *_, fields in entries][1] == TRACEPARENT.encode()
    commands = [engine_pb2.Command.FromString(split_frames(fields[b"cmds"])[0])
                for *_, fields in entries]
    assert [c.new_order.client_order_id for c in commands] == ["via-route", "via-lane"]
    assert [c.traceparent for c in commands] == ["", ""]  # their entries' hold theirs
    monkeypatch.undo()  # /metrics is the framework's
    after = await samples(gateway)
    accepted = ("venue_orders_accepted_total", (("channel", "http"),))
    duplicates = ("venue_orders_duplicate_total", (("channel", "http"),))
    timed = ("venue_http_request_duration_seconds_count",
             (("handler", "submit_order"), ("method", "POST")))
    assert [after[name] - before.get(name, 0) for name in (accepted, duplicates, timed)] == \
        [1, 1, 2]


async def samples(gateway: Gateway) -> dict[tuple[str, tuple], float]:
    """The gateway's metrics: (sample name, sorted labels) -> value."""
    text = (await gateway.client.get("/metrics")).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.parametrize(("body", "key", "status"), [
    (limit_order(price="100.005"), None, 422),  # off tick: the route words it
    (without(limit_order(), "side"), None, 422),
    (limit_order(), "tv_unknown", 401),  # not a key the gateway knows
])
async def test_what_the_lane_cannot_answer_goes_to_the_route_with_its_body(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any],
        key: str | None, status: int) -> None:
    await post_order(gateway, limit_order(clientOrderId="warm"))  # the gateway knows the key
    lane = fast_lane(gateway)
    handed, route = [], lane.app

    async def framework(scope, receive, send) -> None:
        handed.append(scope["path"])
        await route(scope, receive, send)

    monkeypatch.setattr(lane, "app", framework)
    response = await post_order(gateway, body, key=key)
    assert response.status_code == status, response.text
    assert handed == ["/v1/orders"]
    if status == 422:
        assert response.json()["detail"][0]["loc"][0] == "body"
    assert len(await gateway.stream_entries()) == 1  # the warm-up order alone


# --- order status ------------------------------------------------------------------------

async def test_queued_order_reads_as_pending_new(gateway: Gateway) -> None:
    accepted = (await post_order(gateway, limit_order())).json()
    response = await get_order(gateway, accepted["orderId"])
    assert response.status_code == 200, response.text
    assert response.json() == {
        "orderId": accepted["orderId"], "clientOrderId": "alice-1", "symbol": "BTC-USD",
        "side": "buy", "type": "limit", "timeInForce": "gtc", "price": "64250.50",
        "quantity": "0.2500", "postOnly": False, "status": "pending_new", "cumQty": "0.0000",
        "leavesQty": "0.2500", "avgPx": None, "rejectReason": None, "createdAt": None,
        "updatedAt": None}


async def insert_order_row(db: asyncpg.Connection, *, order_id: int, account_id: int) -> None:
    # 3 BTC bought: 2 at 100.00 and 1 at 100.01 (prices in ticks, quantities in lots).
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    await db.execute(
        "INSERT INTO orders (order_id, client_order_id, account_id, instrument_id, side, type, "
        "time_in_force, post_only, price, quantity, status, cum_qty, leaves_qty, cum_notional, "
        "reject_reason, partition, last_sequence, created_at, updated_at) VALUES "
        "($1, 'filled-1', $2, $3, 'buy', 'limit', 'gtc', false, 10001, 30000, 'filled', "
        "30000, 0, $4, NULL, 0, 42, $5, $5)",
        order_id, account_id, BTC.id, 20000 * 10000 + 10000 * 10001, at)


async def test_reported_order_reads_from_postgres_as_decimal_strings(gateway: Gateway) -> None:
    await insert_order_row(gateway.db, order_id=9001, account_id=gateway.account_id)
    response = await get_order(gateway, 9001)
    assert response.status_code == 200, response.text
    order = response.json()
    assert order == order | {
        "orderId": "9001", "clientOrderId": "filled-1", "symbol": "BTC-USD", "price": "100.01",
        "quantity": "3.0000", "status": "filled", "cumQty": "3.0000", "leavesQty": "0.0000",
        "avgPx": "100.003333", "rejectReason": None}
    assert datetime.fromisoformat(order["createdAt"]) == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_another_accounts_order_is_404_whether_queued_or_reported(
        gateway: Gateway) -> None:
    queued = (await post_order(gateway, limit_order())).json()["orderId"]
    await insert_order_row(gateway.db, order_id=9001, account_id=gateway.account_id)
    for order_id in (queued, 9001):
        assert (await get_order(gateway, order_id)).status_code == 200
        response = await get_order(gateway, order_id, key=gateway.other_key)
        assert response.status_code == 404
        assert response.json() == {"detail": f"order {order_id} not found",
                                   "reason": "unknown_order"}


@pytest.mark.parametrize("order_id", ["424242", str(2**63 - 1)])
async def test_unknown_order_is_404(gateway: Gateway, order_id: str) -> None:
    assert (await get_order(gateway, order_id)).status_code == 404


# --- instruments and probes -----------------------------------------------------------

async def test_instruments_list_the_venue_grid(gateway: Gateway) -> None:
    response = await gateway.client.get("/v1/instruments", headers=gateway.auth())
    assert response.status_code == 200
    assert response.json()[0] == {"symbol": "BTC-USD", "tickSize": "0.01", "lotSize": "0.0001",
                                  "minPrice": "0.01", "maxPrice": "1000000",
                                  "maxQuantity": "1000"}
    assert [i["symbol"] for i in response.json()] == [i.symbol for i in VENUE.instruments]


async def test_ready_only_while_a_writer_persists_and_submitters_reach_the_engine(
        gateway: Gateway) -> None:
    assert (await gateway.client.get("/healthz")).json() == {"status": "ok"}
    response = await gateway.client.get("/readyz")  # Redis and Postgres answer; no other part
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert (checks["redis"], checks["postgres"]) == ("ok", "ok")
    assert "no writer has reported" in checks["persistence"]
    assert "no submitter has reported on engine partition 0" in checks["matching"]

    await health.report(gateway.redis, KEYS, health.writer_field("w"), True,
                             stalledS=0.0)
    await health.report(gateway.redis, KEYS, health.engine_field(0, "s"), True)
    response = await gateway.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {
        "redis": "ok", "postgres": "ok", "persistence": "ok", "matching": "ok"}}

    await health.report(gateway.redis, KEYS, health.engine_field(0, "s"), False,
                             "StatusCode.UNAVAILABLE: connection refused")
    await health.report(gateway.redis, KEYS, health.writer_field("w"), True,
                             stalledS=42.0)
    response = await gateway.client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["persistence"] == ("persistence has not moved for 42 s while engine events "
                                     "await it")
    assert checks["matching"] == ("submitter s cannot reach engine partition 0: "
                                  "StatusCode.UNAVAILABLE: connection refused")


async def test_readiness_fails_naming_redis_when_redis_is_down(gateway: Gateway,
                                                              redis_server) -> None:
    redis_server.stop()
    response = await gateway.client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["postgres"] == "ok"
    assert checks["redis"] != "ok"
    assert (await gateway.client.get("/healthz")).status_code == 200
    order = await post_order(gateway, limit_order())
    assert order.status_code == 503
