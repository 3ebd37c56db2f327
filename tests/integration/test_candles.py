"""Candles (GET /v1/candles) on a real Postgres: the writer folds each trade into its
minute once, however often and in whatever order runs are written, and every interval
rolls its buckets up from those minutes with the right boundaries."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg
import httpx
import pytest

from venue.contract.config import VenueConfig
from venue.db.migrate import migrate
from venue.enginepb import engine_pb2 as pb
from venue.local.venue import LocalVenue
from venue.writer.rows import Rows
from venue.writer.store import prepare, write_rows

if TYPE_CHECKING:
    from conftest import Gateway

pytestmark = pytest.mark.integration

BTC = VenueConfig().by_symbol["BTC-USD"]  # tick 0.01, lot 0.0001
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STEP = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def trade_event(sequence: int, moment: datetime, price: int, quantity: int,
                instrument_id: int = BTC.id) -> pb.Event:
    ns = (moment - EPOCH) // timedelta(microseconds=1) * 1000
    return pb.Event(sequence=sequence, timestamp_ns=ns, trade=pb.Trade(
        trade_id=sequence, instrument_id=instrument_id, price=price, quantity=quantity,
        buy_order_id=1, sell_order_id=2, aggressor_side=pb.SIDE_BUY))


def batch(*events: pb.Event) -> pb.ReportBatch:
    return pb.ReportBatch(partition=0, events=events, next_sequence=events[-1].sequence + 1)


def run_of(*batches: pb.ReportBatch) -> Rows:
    """The rows of a run as the writer reads them (venue._reportwire)."""
    rows = Rows()
    for one in batches:
        rows.add_serialized(one.SerializeToString())
    return rows


async def staged(database_url: str) -> asyncpg.Connection:
    connection = await asyncpg.connect(database_url)
    await prepare(connection)
    return connection


def expected_candles(events: list[pb.Event], interval: str, instrument_id: int = BTC.id
                     ) -> list[dict]:
    """The buckets of `events` (trades), computed from the trades themselves."""
    step = STEP[interval] * 1_000_000
    buckets: dict[int, list] = {}
    for event in sorted(events, key=lambda e: (e.timestamp_ns // 1000, e.sequence)):
        if event.trade.instrument_id != instrument_id:
            continue
        price, quantity = event.trade.price, event.trade.quantity
        start = event.timestamp_ns // 1000 // step * step
        candle = buckets.setdefault(start, [price, price, price, price, 0, 0])
        candle[1], candle[2], candle[3] = max(candle[1], price), min(candle[2], price), price
        candle[4] += quantity
        candle[5] += 1
    return [{"time": (EPOCH + timedelta(microseconds=start)).isoformat().replace("+00:00", "Z"),
             "open": BTC.price_text(o), "high": BTC.price_text(h), "low": BTC.price_text(lo),
             "close": BTC.price_text(c), "volume": BTC.quantity_text(v), "trades": n}
            for start, (o, h, lo, c, v, n) in sorted(buckets.items())]


async def stored_candles(connection: asyncpg.Connection, bucket: str = "minute"
                         ) -> list[tuple]:
    table = {"minute": "candles_1m", "hour": "candles_1h"}[bucket]
    rows = await connection.fetch(
        f"SELECT instrument_id, {bucket}, open, high, low, close, volume, trades, open_time,"
        f" open_sequence, close_time, close_sequence FROM {table} ORDER BY 1, 2")
    return [tuple(row) for row in rows]


async def candles_of_trades(connection: asyncpg.Connection, bucket: str = "minute"
                            ) -> list[tuple]:
    """The candles of what `trades` holds, straight from the trades."""
    rows = await connection.fetch(f"""
        SELECT instrument_id, date_bin('1 {bucket}', engine_time, timestamptz 'epoch'),
               (array_agg(price ORDER BY engine_time, sequence))[1], max(price), min(price),
               (array_agg(price ORDER BY engine_time DESC, sequence DESC))[1],
               sum(quantity)::bigint, count(*),
               min(engine_time), (array_agg(sequence ORDER BY engine_time, sequence))[1],
               max(engine_time), (array_agg(sequence ORDER BY engine_time DESC, sequence DESC))[1]
        FROM trades GROUP BY 1, 2 ORDER BY 1, 2""")
    return [tuple(row) for row in rows]


async def assert_candles_are_the_trades_once(connection: asyncpg.Connection) -> None:
    for bucket in ("minute", "hour"):
        assert await stored_candles(connection, bucket) == await candles_of_trades(
            connection, bucket), bucket


# --- boundaries --------------------------------------------------------------------------

# Trades on and next to the boundaries of a minute, 5 minutes, an hour and a UTC day; the
# last two at the same microsecond, in sequence order.
BOUNDARY_TRADES = [
    trade_event(1, at("2026-03-01T23:59:59.999999Z"), 10000, 1),
    trade_event(2, at("2026-03-02T00:00:00Z"), 10500, 2),
    trade_event(3, at("2026-03-02T00:00:59.999999Z"), 9500, 3),
    trade_event(4, at("2026-03-02T00:01:00Z"), 11000, 4),
    trade_event(5, at("2026-03-02T00:04:59.999999Z"), 9000, 5),
    trade_event(6, at("2026-03-02T00:05:00Z"), 12000, 6),
    trade_event(7, at("2026-03-02T00:59:59.999999Z"), 8000, 7),
    trade_event(8, at("2026-03-02T01:00:00Z"), 13000, 8),
    trade_event(9, at("2026-03-02T01:00:00Z"), 13100, 9),
]


def candle(time_: str, o: str, h: str, lo: str, c: str, volume: str, trades: int) -> dict:
    return {"time": time_, "open": o, "high": h, "low": lo, "close": c, "volume": volume,
            "trades": trades}


BOUNDARY_CANDLES = {
    "1m": [candle("2026-03-01T23:59:00Z", "100.00", "100.00", "100.00", "100.00", "0.0001", 1),
           candle("2026-03-02T00:00:00Z", "105.00", "105.00", "95.00", "95.00", "0.0005", 2),
           candle("2026-03-02T00:01:00Z", "110.00", "110.00", "110.00", "110.00", "0.0004", 1),
           candle("2026-03-02T00:04:00Z", "90.00", "90.00", "90.00", "90.00", "0.0005", 1),
           candle("2026-03-02T00:05:00Z", "120.00", "120.00", "120.00", "120.00", "0.0006", 1),
           candle("2026-03-02T00:59:00Z", "80.00", "80.00", "80.00", "80.00", "0.0007", 1),
           candle("2026-03-02T01:00:00Z", "130.00", "131.00", "130.00", "131.00", "0.0017", 2)],
    "5m": [candle("2026-03-01T23:55:00Z", "100.00", "100.00", "100.00", "100.00", "0.0001", 1),
           candle("2026-03-02T00:00:00Z", "105.00", "110.00", "90.00", "90.00", "0.0014", 4),
           candle("2026-03-02T00:05:00Z", "120.00", "120.00", "120.00", "120.00", "0.0006", 1),
           candle("2026-03-02T00:55:00Z", "80.00", "80.00", "80.00", "80.00", "0.0007", 1),
           candle("2026-03-02T01:00:00Z", "130.00", "131.00", "130.00", "131.00", "0.0017", 2)],
    "1h": [candle("2026-03-01T23:00:00Z", "100.00", "100.00", "100.00", "100.00", "0.0001", 1),
           candle("2026-03-02T00:00:00Z", "105.00", "120.00", "80.00", "80.00", "0.0027", 6),
           candle("2026-03-02T01:00:00Z", "130.00", "131.00", "130.00", "131.00", "0.0017", 2)],
    "1d": [candle("2026-03-01T00:00:00Z", "100.00", "100.00", "100.00", "100.00", "0.0001", 1),
           candle("2026-03-02T00:00:00Z", "105.00", "131.00", "80.00", "131.00", "0.0044", 8)],
}


# Every boundary trade's bucket, within the most candles a request may span.
WHOLE_RANGE = {"1m": ("2026-03-01T23:00:00Z", "2026-03-02T02:00:00Z")} | dict.fromkeys(
    ("5m", "1h", "1d"), ("2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z"))


async def candles_of(gateway: Gateway, interval: str, start: str, end: str,
                     symbol: str = "BTC-USD") -> list[dict]:
    response = await gateway.client.get(f"/v1/candles/{symbol}", params={
        "interval": interval, "from": start, "to": end}, headers=gateway.auth())
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("interval", ["1m", "5m", "1h", "1d"])
async def test_trades_on_boundaries_land_in_the_buckets_they_start(
        gateway: Gateway, database_url: str, interval: str):
    connection = await staged(database_url)
    # Two runs, the later minutes first (a gap filled late); a trade of another instrument
    # in the same minutes stays out.
    other = trade_event(10, at("2026-03-02T00:00:30Z"), 1, 1000, instrument_id=2)
    await write_rows(connection, run_of(batch(*BOUNDARY_TRADES[4:]), batch(other)))
    await write_rows(connection, run_of(batch(*BOUNDARY_TRADES[:4])))
    await connection.close()
    got = await candles_of(gateway, interval, *WHOLE_RANGE[interval])
    assert got == BOUNDARY_CANDLES[interval]
    assert got == expected_candles(BOUNDARY_TRADES, interval)


async def test_from_and_to_select_buckets_by_their_start(gateway: Gateway, database_url: str):
    connection = await staged(database_url)
    await write_rows(connection, run_of(batch(*BOUNDARY_TRADES)))
    await connection.close()
    hour_0, hour_1 = BOUNDARY_CANDLES["1h"][1:]
    # `from` inside a bucket leaves that bucket out; a bucket `to` falls inside of is whole.
    assert await candles_of(gateway, "1h", "2026-03-02T00:30:00Z", "2026-03-02T01:00:00Z") == []
    assert await candles_of(gateway, "1h", "2026-03-02T00:00:00Z",
                            "2026-03-02T01:00:00Z") == [hour_0]
    assert await candles_of(gateway, "1h", "2026-03-02T00:00:00.000001Z",
                            "2026-03-02T01:00:00.000001Z") == [hour_1]
    assert await candles_of(gateway, "1h", "2026-03-01T23:00:00.000001Z",
                            "2026-03-02T00:00:00.000001Z") == [hour_0]
    # Offsets other than Z name the same instant.
    assert await candles_of(gateway, "1d", "2026-03-02T01:00:00+01:00",
                            "2026-03-02T23:59:59-05:00") == BOUNDARY_CANDLES["1d"][1:]
    # Without `from`: the 500 intervals before `to`; without `to`: up to now.
    response = await gateway.client.get("/v1/candles/BTC-USD", headers=gateway.auth(), params={
        "interval": "1m", "to": "2026-03-02T00:05:00Z"})
    assert response.json() == BOUNDARY_CANDLES["1m"][:4]
    response = await gateway.client.get("/v1/candles/BTC-USD", headers=gateway.auth(), params={
        "interval": "1d", "from": "2026-03-02T00:00:00Z"})
    assert response.json() == BOUNDARY_CANDLES["1d"][1:]


# --- written once, whatever happens -----------------------------------------------------

async def test_a_run_written_twice_or_overlapping_counts_each_trade_once(
        gateway: Gateway, database_url: str):
    first, second, third = (batch(*BOUNDARY_TRADES[:3]), batch(*BOUNDARY_TRADES[3:6]),
                            batch(*BOUNDARY_TRADES[6:]))
    connection = await staged(database_url)
    await write_rows(connection, run_of(first, second))
    await write_rows(connection, run_of(first, second))  # a crash between COMMIT and XACK
    await write_rows(connection, run_of(second, third))  # read again, with more since
    await write_rows(connection, run_of(first))  # a late replay of the oldest
    assert await connection.fetchval("SELECT count(*) FROM trades") == len(BOUNDARY_TRADES)
    await assert_candles_are_the_trades_once(connection)
    await connection.close()
    for interval in STEP:
        assert await candles_of(gateway, interval, *WHOLE_RANGE[interval]) == \
            BOUNDARY_CANDLES[interval]


async def test_writers_racing_with_the_same_trades_count_them_once(database_url: str):
    """Runs of overlapping batches, several written at the same time on connections of
    their own (two writers, or a run read again while it commits), in random order: the
    candles are those of the trades, each once."""
    rng = random.Random(7)
    start = at("2026-05-05T09:58:00Z")
    events, sequence = [], 0
    for _ in range(600):
        sequence += 1
        moment = start + timedelta(microseconds=rng.choice([0, rng.randint(0, 300_000_000)]))
        events.append(trade_event(sequence, moment, rng.randint(9000, 11000),
                                  rng.randint(1, 50), instrument_id=rng.choice([1, 2])))
    batches = [batch(*events[i:i + 20]) for i in range(0, len(events), 20)]
    runs = []
    for _ in range(40):
        first = rng.randrange(len(batches))
        runs.append(batches[first:first + rng.randint(1, 6)])
    runs.append(batches)  # every trade at least once
    connections = [await staged(database_url) for _ in range(4)]
    try:
        for at_once in range(0, len(runs), 4):
            await asyncio.gather(*(write_rows(connection, run_of(*run)) for connection, run
                                   in zip(connections, runs[at_once:at_once + 4])))
        check = connections[0]
        assert await check.fetchval("SELECT count(*) FROM trades") == len(events)
        await assert_candles_are_the_trades_once(check)
        for bucket in ("minute", "hour"):
            stored = await stored_candles(check, bucket)
            assert sum(row[7] for row in stored) == len(events)
            assert sum(row[6] for row in stored) == sum(e.trade.quantity for e in events)
    finally:
        for connection in connections:
            await connection.close()


async def test_the_migration_folds_the_trades_persisted_before_it(postgres_server):
    name = "candles_backfill"
    admin = await asyncpg.connect(postgres_server.url("postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = postgres_server.url(name)
    await migrate(url, until=16)
    connection = await asyncpg.connect(url)
    try:
        for event in BOUNDARY_TRADES:
            t = event.trade
            await connection.execute(
                "INSERT INTO trades VALUES (0, $1, $2, $3, $4, $5, 1, 2, 'buy', $6)",
                t.trade_id, event.sequence, t.instrument_id, t.price, t.quantity,
                EPOCH + timedelta(microseconds=event.timestamp_ns // 1000))
        assert "0016_candles.sql" in await migrate(url)
        for bucket, interval in (("minute", "1m"), ("hour", "1h")):
            rows = await stored_candles(connection, bucket)
            assert [(row[1].isoformat().replace("+00:00", "Z"), BTC.price_text(row[2]),
                     BTC.price_text(row[3]), BTC.price_text(row[4]), BTC.price_text(row[5]),
                     BTC.quantity_text(row[6]), row[7]) for row in rows] == [
                tuple(c.values()) for c in BOUNDARY_CANDLES[interval]]
            assert rows == await candles_of_trades(connection, bucket)
    finally:
        await connection.close()


# --- the route's answers to bad requests ---------------------------------------------------

@pytest.mark.parametrize("params, field, kind", [
    ({"interval": "2m"}, "interval", "literal_error"),
    ({}, "interval", "missing"),
    ({"interval": "1m", "from": "yesterday"}, "from", "datetime_from_date_parsing"),
    ({"interval": "1m", "to": "2026-03-02T00:00:00"}, "to", "timezone_aware"),
    ({"interval": "1m", "from": "2026-03-02T00:00:00Z", "to": "2026-03-02T00:00:00Z"},
     "from", "from_not_before_to"),
    ({"interval": "1m", "from": "2026-03-02T01:00:00Z", "to": "2026-03-02T00:00:00Z"},
     "from", "from_not_before_to"),
    ({"interval": "1m", "from": "2099-01-01T00:00:00Z"}, "from", "from_not_before_to"),
    ({"interval": "1m", "from": "2026-03-01T00:00:00Z", "to": "2026-03-02T02:00:00Z"},
     "from", "too_many_candles"),
    ({"interval": "1d", "from": "0001-01-01T00:00:00+01:00", "to": "9999-12-31T23:59:59-23:59"},
     "from", "too_many_candles"),
])
async def test_a_bad_interval_or_range_gets_422_naming_the_field(
        gateway: Gateway, params: dict, field: str, kind: str):
    response = await gateway.client.get("/v1/candles/BTC-USD", params=params,
                                        headers=gateway.auth())
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert (problem["loc"], problem["type"]) == (["query", field], kind), problem
    assert problem["msg"]


async def test_the_most_candles_a_request_spans_is_1500(gateway: Gateway):
    ok = await gateway.client.get("/v1/candles/BTC-USD", headers=gateway.auth(), params={
        "interval": "1m", "from": "2026-03-01T00:00:00Z", "to": "2026-03-02T01:00:00Z"})
    assert ok.status_code == 200 and ok.json() == []  # 1,500 minutes exactly
    too_many = await gateway.client.get("/v1/candles/BTC-USD", headers=gateway.auth(), params={
        "interval": "1m", "from": "2026-03-01T00:00:00Z", "to": "2026-03-02T01:00:00.1Z"})
    assert too_many.status_code == 422
    assert "1501 1m candles; at most 1500" in too_many.json()["detail"][0]["msg"]
    edges = await gateway.client.get("/v1/candles/BTC-USD", headers=gateway.auth(), params={
        "interval": "1d", "from": "9999-12-31T00:00:00-23:59", "to": "9999-12-31T23:59:59-23:59"})
    assert edges.status_code == 200 and edges.json() == []


@pytest.mark.parametrize("params", [
    {"interval": "1d", "to": "0001-01-01T00:00:00.000001Z"},  # `from` before year 1
    {"interval": "1d", "to": "0001-01-02T00:00:00+23:59"},
    {"interval": "1h", "from": "0001-01-01T00:00:00+23:59", "to": "0001-01-02T00:00:00Z"},
    {"interval": "1m", "from": "9999-12-31T23:00:00Z", "to": "9999-12-31T23:59:59.999999Z"},
    {"interval": "1d", "from": "9999-12-30T00:00:00Z", "to": "9999-12-31T23:59:59-23:59"},
])
async def test_the_ends_of_time_get_an_answer(gateway: Gateway, params: dict):
    response = await gateway.client.get("/v1/candles/BTC-USD", params=params,
                                        headers=gateway.auth())
    assert response.status_code == 200 and response.json() == [], response.text


@pytest.mark.parametrize("written", ["1700000000", "1700000000000", "-62135596800", "2026-12-05",
                                     "2026-12-05T17:00:00", "17:00:00Z", "2026-12-05T17:00Z",
                                     "2026-12-05 17:00:00+0100", "2026-12-05T17:00:00Zjunk"])
async def test_a_time_is_rfc_3339_with_its_offset_not_a_number(gateway: Gateway, written: str):
    """pydantic reads a number as Unix seconds, or milliseconds as it guesses from the
    size: refused as the README says, naming the parameter."""
    response = await gateway.client.get("/v1/candles/BTC-USD", headers=gateway.auth(),
                                        params={"interval": "1m", "from": written})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "from"]


async def test_an_unknown_symbol_gets_404(gateway: Gateway):
    response = await gateway.client.get("/v1/candles/DOGE-USD", params={"interval": "1m"},
                                        headers=gateway.auth())
    assert response.status_code == 404
    assert "DOGE-USD" in response.json()["detail"]


# --- end to end ---------------------------------------------------------------------------

async def test_crossing_orders_on_a_local_venue_show_in_their_candles(local_venue: LocalVenue):
    headers = {"Authorization": f"Bearer {local_venue.keys['alice']}"}
    async with httpx.AsyncClient(base_url=local_venue.gateway_url, timeout=10,
                                 headers=headers) as http:
        async def order(account: str, side: str, price: str, quantity: str) -> None:
            response = await http.post("/v1/orders", json={
                "symbol": "BTC-USD", "side": side, "price": price, "quantity": quantity,
                "type": "limit", "timeInForce": "gtc"},
                headers={"Authorization": f"Bearer {local_venue.keys[account]}"})
            assert response.status_code == 202, response.text

        before = datetime.now(UTC)
        await order("alice", "buy", "101.00", "0.5")
        await order("alice", "buy", "100.00", "0.25")
        await order("bob", "sell", "100.00", "0.75")  # fills 0.5 at 101.00, 0.25 at 100.00
        params = {"interval": "1m", "from": (before - timedelta(minutes=1)).isoformat()}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = await http.get("/v1/candles/BTC-USD", params=params)
            assert response.status_code == 200, response.text
            if sum(c["trades"] for c in response.json()) == 2:
                break
            await asyncio.sleep(0.1)
        minutes = response.json()
        day = (await http.get("/v1/candles/BTC-USD", params={"interval": "1d"})).json()
    assert sum(c["trades"] for c in minutes) == 2, minutes
    # Both fills are of one engine command: one time, so one minute.
    [minute] = minutes
    assert {k: minute[k] for k in ("open", "high", "low", "close", "volume", "trades")} == {
        "open": "101.00", "high": "101.00", "low": "100.00", "close": "100.00",
        "volume": "0.7500", "trades": 2}
    assert day[-1] | {"time": None} == minute | {"time": None}
    assert day[-1]["time"].endswith("T00:00:00Z")
