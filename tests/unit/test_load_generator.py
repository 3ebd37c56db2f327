"""The e2e benchmark's load generator writes valid, distinct orders cheaply."""

from __future__ import annotations

import random

import msgspec

from venue.bench.load import BATCH_TEMPLATES, LoadResult, LoadSpec, _count, _Orders
from venue.contract.instruments import Instrument

INSTRUMENTS = (
    Instrument(symbol="BTC-USD", id=1, tick_size="0.01", lot_size="0.0001", min_price="0.01",
               max_price="1000000"),
    Instrument(symbol="ETH-USD", id=2, tick_size="0.01", lot_size="0.001", min_price="0.01",
               max_price="100000"),
)


def orders_of(tag: str) -> _Orders:
    spec = LoadSpec(url="http://127.0.0.1:1", path="/v1/orders/batch", keys=("k",),
                    instruments=INSTRUMENTS, duration_s=1, connections=1, batch_size=50,
                    seed=1, tag=tag)
    return _Orders(spec, random.Random(7), 0)


def test_batches_are_json_orders_with_consecutive_client_order_ids() -> None:
    orders = orders_of("run%d-")  # a "%" in the tag is text, not a format
    seen = set()
    for first in (0, 50, 100, 10_000_000):
        body = msgspec.json.decode(orders.batch(first, 50))["orders"]
        assert [o["clientOrderId"] for o in body] == [
            f"run%d--0-{serial}" for serial in range(first + 1, first + 51)]
        for order in body:
            assert order["symbol"] in ("BTC-USD", "ETH-USD")
            assert order["side"] in ("buy", "sell")
            assert set(order) == {"symbol", "side", "price", "quantity", "clientOrderId"}
        seen.update(o["clientOrderId"] for o in body)
    assert len(seen) == 200


def test_batches_vary_their_orders_as_the_single_orders_do() -> None:
    orders = orders_of("t-")
    shapes = {orders.batch(0, 50) for _ in range(4 * BATCH_TEMPLATES)}
    assert len(shapes) > BATCH_TEMPLATES // 2  # many different batches, drawn at random
    sides = [o["side"] for o in msgspec.json.decode(orders.batch(0, 50))["orders"]]
    assert 0 < sides.count("buy") < 50
    single = msgspec.json.decode(orders.order(42))
    assert single["clientOrderId"] == "t--0-42"


def test_a_batch_answer_counts_the_same_read_fast_or_decoded() -> None:
    load = LoadSpec(url="http://127.0.0.1:1", path="/v1/orders/batch", keys=("k",),
                    instruments=INSTRUMENTS, duration_s=1, connections=1, batch_size=3,
                    seed=1, tag="t")
    item = ('{{"index":{0},"status":"pending_new","orderId":"{1}","clientOrderId":"c{0}",'
            '"duplicate":{2}}}')
    taken = ('{"accepted":3,"rejected":0,"results":[' + ",".join(
        item.format(i, 100 + i, "false") for i in range(3)) + "]}").encode()
    with_duplicate = taken.replace(b'"orderId":"101","clientOrderId":"c1","duplicate":false',
                                   b'"orderId":"7","clientOrderId":"c1","duplicate":true')
    rejected = ('{"accepted":2,"rejected":1,"results":[' + item.format(0, 100, "false") + ","
                '{"index":1,"status":"rejected","errors":[{"type":"off_tick"}]},'
                + item.format(2, 102, "false") + "]}").encode()
    for answer, ids, rejections in ((taken, [100, 101, 102], 0), (with_duplicate, [100, 102], 0),
                                    (rejected, [100, 102], 1)):
        result = LoadResult()
        _count(200, answer, load, result)
        assert (list(result.accepted_ids), result.rejected) == (ids, rejections)
