"""venue._orderwire (C) against the Python path it stands in for: a batch it takes is one
Python accepts order for order, encoded and answered byte for byte the same; a batch
Python would reject any order of, it leaves to Python."""

from __future__ import annotations

import json
import random
from typing import Any

import msgspec
import pytest

from venue.api.commands import encode_new_order
from venue.api.order_rules import CheckedOrder, new_order
from venue.api.order_wire import batch_table, orderwire
from venue.api.routes.batch import _QUEUED
from venue.contract.config import VenueConfig
from venue.contract.entries import frame
from venue.contract.instruments import Instrument

VENUE = VenueConfig(shards=4, instruments=(
    Instrument(symbol="BTC-USD", id=1, tick_size="0.01", lot_size="0.0001", min_price="0.01",
               max_price="1000000", max_quantity="1000"),
    Instrument(symbol="ETH-USD", id=2, tick_size="0.05", lot_size="0.001", min_price="1.00",
               max_price="100000", max_quantity="10000"),
    Instrument(symbol="AAPL", id=3, tick_size="0.01", lot_size="1", min_price="0.01",
               max_price="100000", max_quantity="1000000"),
    Instrument(symbol="ODD.LOT", id=1028, tick_size="25", lot_size="0.5", min_price="100",
               max_price="1000000", max_quantity="50"),
))
TABLE = batch_table(VENUE)
ACCOUNT = 300



def test_the_venues_instruments_fit_the_c_table() -> None:
    assert TABLE is not None


def python_path(body: bytes) -> list[CheckedOrder] | None:
    """Every order as the rules check it (venue.api.order_rules, the one author), or None
    when they reject any of them (or one has no clientOrderId, which the C path leaves to
    Python too)."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(raw, dict) or set(raw) != {"orders"} or not isinstance(raw["orders"], list):
        return None
    checked = [new_order(VENUE, order) for order in raw["orders"]]
    if not checked or not all(isinstance(c, CheckedOrder) and c.order.client_order_id
                              for c in checked):
        return None
    return checked


def python_encoding(checked: list[CheckedOrder], ids: list[int]) -> dict[int, tuple]:
    groups: dict[int, list] = {}
    for (order, instrument, ticks, lots), order_id in zip(checked, ids):
        command = encode_new_order(order, order_id=order_id,
                                   client_order_id=order.client_order_id, account_id=ACCOUNT,
                                   instrument_id=instrument.id, price_ticks=ticks,
                                   quantity_lots=lots)
        ids_text, coids, frames, sizes = groups.setdefault(VENUE.shard_of(instrument),
                                                           ([], [], [], []))
        ids_text.append(f"{order_id},")
        coids.append(f"{order.client_order_id} ")
        frames.append(frame(command))
        sizes.append(f"{len(frames[-1])},")
    return {shard: ("".join(i).encode(), "".join(c).encode(), b"".join(f),
                    "".join(z).encode()) for shard, (i, c, f, z) in groups.items()}


class Pairs(list):
    """An object's (key, value) pairs, as json.loads reads them."""


def repeated_keys(value: Any, levels: int, depth: int = 1) -> tuple[set[str], int]:
    """Every key an object of a decoded document names twice (within `levels`, 0: all),
    and the most keys any such object has."""
    found, widest = set(), 0
    if isinstance(value, Pairs):
        if not levels or depth <= levels:
            keys = [key for key, _ in value]
            found = {key for i, key in enumerate(keys) if key in keys[:i]}
            widest = len(keys)
        inner = [item for _, item in value]
    else:
        inner = value if isinstance(value, list) else []
    for item in inner:
        more, wide = repeated_keys(item, levels, depth + 1)
        found, widest = found | more, max(widest, wide)
    return found, widest


def assert_repeated_key_as_python(document: bytes) -> None:
    """repeated_key (C) finds in a document the decoder takes what Python's json module
    finds: a key it names is one an object repeats; None only when none does (among the
    first KEYS_COMPARED keys of each object, all any object the API takes has)."""
    for levels in (0, 1):
        found = orderwire.repeated_key(document, levels)  # never fails, whatever it is sent
        try:
            msgspec.json.decode(document)
            value = json.loads(document, object_pairs_hook=Pairs)
        except (msgspec.DecodeError, ValueError, RecursionError):
            continue  # not JSON: the decoder refuses it before anyone asks
        repeated, widest = repeated_keys(value, levels)
        if found is Ellipsis:  # an escaped key: the refusal asks Python (order_rules)
            assert b"\\" in document, document
        elif found is None:
            assert not repeated or widest > KEYS_COMPARED, (document, repeated)
        else:
            assert json.loads(f'"{found}"') in repeated, (document, found, repeated)


def assert_same_as_python(body: bytes) -> bool:
    """True when the C path took the batch (and agreed with Python in every byte)."""
    assert_repeated_key_as_python(body)
    scanned = orderwire.scan(TABLE, body)
    checked = python_path(body)
    if scanned is None:
        return False
    assert checked is not None, body
    count, plan, shards = scanned
    assert count == len(checked)
    assert shards == list(dict.fromkeys(VENUE.shard_of(c.instrument) for c in checked))
    grouped = [10_000_000_000 + 7 * i for i in range(count)]
    # The ids come grouped by shard: each shard's orders take the next ones, in batch order.
    order_shards = [VENUE.shard_of(c.instrument) for c in checked]
    taken = iter(grouped)
    of_shard = {s: [next(taken) for _ in range(order_shards.count(s))] for s in shards}
    ids = [of_shard[s].pop(0) for s in order_shards]  # the i-th order's
    encoded = orderwire.encode(TABLE, body, plan, grouped, ACCOUNT, shards)
    expected = python_encoding(checked, ids)
    assert dict(zip(shards, encoded)) == expected
    # Some orders found an original: the answer says so, as the Python route writes it.
    positions = {shard: 0 for shard in shards}
    originals = {shard: [] for shard in shards}
    items = []
    for index, (c, order_id) in enumerate(zip(checked, ids)):
        shard = VENUE.shard_of(c.instrument)
        original = b"42" if index % 3 == 1 else b""
        originals[shard].append(original)
        positions[shard] += 1
        items.append(_QUEUED % (index, int(original) if original else order_id,
                                c.order.client_order_id, "true" if original else "false"))
    answer = orderwire.answer(TABLE, body, plan, grouped, shards,
                              [originals[s] for s in shards])
    assert answer == (f'{{"accepted":{count},"rejected":0,"results":[{",".join(items)}]}}'
                      ).encode()
    json.loads(answer)
    return True


def order(**fields) -> dict:
    """An order; a field given as None is left out."""
    merged = {"symbol": "BTC-USD", "side": "buy", "price": "100.25", "quantity": "0.5",
              "clientOrderId": "c-1"} | fields
    return {key: value for key, value in merged.items() if value is not None}


def body_of(*orders: dict) -> bytes:
    return json.dumps({"orders": list(orders)}).encode()


def test_a_plain_batch_is_taken_and_matches_python() -> None:
    assert assert_same_as_python(body_of(
        order(), order(symbol="ETH-USD", side="sell", price="2000.05", quantity="1.5",
                       clientOrderId="e:2"),
        order(symbol="AAPL", type="market", price=None, quantity="10", timeInForce="ioc",
              clientOrderId="A_3"),
        order(symbol="ODD.LOT", price="1025", quantity="2.5", postOnly=True,
              timeInForce="day", clientOrderId="odd.4"),
        order(price="7.", quantity="1000", timeInForce="fok", postOnly=False,
              clientOrderId="x" * 63)))


def test_spacing_and_key_order_do_not_matter() -> None:
    body = (b' \n{ "orders" :\t[ { "quantity":"1" , "clientOrderId" : "k" ,"side":"sell",'
            b'"symbol":"AAPL","price":"0.01"} ,{"symbol":"AAPL","side":"buy","price":"5",'
            b'"quantity":"3","clientOrderId":"k2","type":"limit"}] } \r\n')
    assert assert_same_as_python(body)


@pytest.mark.parametrize("changes", [
    {"price": "100.255"}, {"price": "0"}, {"price": "0.00"}, {"price": "1000000.01"},
    {"price": "-1"}, {"price": "1e2"}, {"price": " 100"}, {"price": ".5"}, {"price": ""},
    {"price": "1,5"}, {"price": None}, {"quantity": "0"}, {"quantity": "0.00001"},
    {"quantity": "1000.0001"}, {"quantity": "99999999999999999999"}, {"symbol": "DOGE"},
    {"symbol": "btc-usd"}, {"side": "BUY"}, {"type": "stop"}, {"timeInForce": "gtd"},
    {"type": "market"}, {"postOnly": True, "type": "market", "price": None},
    {"postOnly": True, "timeInForce": "ioc"}, {"postOnly": True, "timeInForce": "fok"},
    {"clientOrderId": None}, {"clientOrderId": ""}, {"clientOrderId": "has space"},
    {"clientOrderId": "x" * 64}, {"clientOrderId": "é"}, {"clientOrderId": "a\nb"},
    {"clientOrderId": 'quo"te'}, {"extra": 1}, {"postOnly": 1}, {"quantity": 1},
    {"symbol": None},
])
def test_a_batch_with_an_order_python_rejects_is_left_to_python(changes: dict) -> None:
    body = body_of(order(clientOrderId="fine"), order(**changes))
    assert orderwire.scan(TABLE, body) is None
    assert_same_as_python(body)


@pytest.mark.parametrize("body", [
    b"", b"{}", b'{"orders":[]}', b'{"orders":{}}', b'[{"symbol":"AAPL"}]',
    b'{"orders":[{}]}', b'{"orders":[' + json.dumps(order()).encode() + b"]",
    b'{"orders":[' + json.dumps(order()).encode() + b"]}x",
    b'{"orders":[' + json.dumps(order()).encode() + b'],"more":1}',
    b'{"orders":[' + json.dumps(order()).encode() + b",]}",
    b'{"orders":[{"symbol":"AAPL","symbol":"AAPL","side":"buy","price":"1",'
    b'"quantity":"1","clientOrderId":"d"}]}',
    b'{"orders":[{"symbol":"AAP\\u004c","side":"buy","price":"1","quantity":"1",'
    b'"clientOrderId":"d"}]}',
    b'{"orders":[{"symbol":"AAPL","side":"buy","price":"1","quantity":"1",'
    b'"clientOrderId":"d","postOnly":truex}]}',
    b'{"orders":[{"symbol":"AAPL","side":"buy","price":"1","quantity":"1",'
    b'"clientOrderId":"d","postOnly":null}]}',
    b'{"orders":[{"symbol":"AAPL","side":"buy","type":"market","price":null,"quantity":"1",'
    b'"clientOrderId":"d"}]}',
])
def test_anything_but_plain_json_is_left_to_python(body: bytes) -> None:
    assert orderwire.scan(TABLE, body) is None
    # (Python reads a repeated key, an escape and an explicit null price itself.)
    assert python_path(body) is None or body.count(b"symbol") == 2 or b"\\u" in body or \
        b'"price":null' in body


def test_random_batches_agree_with_python() -> None:
    rng = random.Random(7)
    values = {
        "symbol": ["BTC-USD", "ETH-USD", "AAPL", "ODD.LOT", "NOPE"],
        "side": ["buy", "sell", "hold"],
        "type": ["limit", "market", None, None],
        "timeInForce": ["gtc", "ioc", "fok", "day", None, "x"],
        "price": ["1", "0.05", "100.25", "2000.10", "125", "1025", "0.5", "000.01", "3.",
                  "1000000", "1000000.05", None, "1e3"],
        "quantity": ["1", "0.5", "2.5", "0.001", "0.0001", "10", "50", "1000", "0", "7.25"],
        "clientOrderId": ["a", "b-1", "c.2:x_Y", None, "bad id"],
        "postOnly": [True, False, None, None],
    }
    taken = 0
    for _ in range(3000):
        orders = []
        for _ in range(rng.randint(1, 4)):
            fields = {k: rng.choice(v) for k, v in values.items()}
            keys = [k for k, v in fields.items() if v is not None]
            rng.shuffle(keys)
            orders.append({k: fields[k] for k in keys})
        separators = rng.choice([(",", ":"), (", ", ": "), (" ,\n", " :\t")])
        body = json.dumps({"orders": orders}, separators=separators).encode()
        taken += assert_same_as_python(body)
        # And what Python accepts in plain digits, C takes too: it is not a path that
        # never runs.
        if python_path(body) is not None and b"1e3" not in body:
            assert orderwire.scan(TABLE, body) is not None, body
    assert taken > 50


def test_mangled_bodies_never_crash_and_any_taken_agrees_with_python() -> None:
    # The body is whatever a client sent: cut, doubled, flipped or stray bytes anywhere.
    rng = random.Random(3)
    base = body_of(order(), order(symbol="AAPL", price="12.34", quantity="7",
                                  clientOrderId="k.2", postOnly=True, timeInForce="day"))
    for _ in range(20_000):
        body = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(body) or 1)
            action = rng.random()
            if action < 0.4 and body:
                body[at] = rng.randrange(256)
            elif action < 0.6:
                del body[at:at + rng.randint(1, 8)]
            elif action < 0.8:
                body[at:at] = bytes(rng.choice(b'{}[],:" \\0123456789.-e') for _ in range(2))
            else:
                del body[at:]
        assert_same_as_python(bytes(body))


def test_a_grid_beyond_the_c_path_leaves_every_batch_to_python() -> None:
    fine = VenueConfig(instruments=(Instrument(
        symbol="SAT", id=9, tick_size="0.00000001", lot_size="0.00000001",
        min_price="0.00000001", max_price="100000000000", max_quantity="21000000"),))
    assert batch_table(fine) is None


def test_a_plan_with_another_body_is_refused_not_read_past() -> None:
    body = body_of(order(clientOrderId="x" * 60))
    count, plan, shards = orderwire.scan(TABLE, body)
    with pytest.raises(ValueError, match="plan does not belong"):
        orderwire.encode(TABLE, b"{}", plan, [1], ACCOUNT, shards)
    with pytest.raises(ValueError, match="plan does not belong"):
        orderwire.answer(TABLE, b"{}", plan, [1], shards, [[b""]])
    with pytest.raises(ValueError, match="distinct"):
        orderwire.encode(TABLE, body, plan, [1], ACCOUNT, shards * 2)
    with pytest.raises(ValueError, match="negative"):
        orderwire.encode(TABLE, body, plan, [1], -1, shards)


def test_nineteen_digits_are_left_to_python() -> None:
    assert orderwire.scan(TABLE, body_of(order(symbol="AAPL", price="1",
                                               quantity="9999999999999999999"))) is None


KEYS_COMPARED = 16  # _orderwire.c's


def _random_json(rng: random.Random, depth: int = 0) -> str:
    """A JSON value whose objects often name a key twice (some spelt with an escape), and
    now and then have more keys than the C path compares."""
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice(['1', '"a"', '"\\""', 'true', 'null', '"b,\\"c"', '[]', '{}'])
    if roll < 0.45:
        return "[" + ",".join(_random_json(rng, depth + 1)
                              for _ in range(rng.randint(0, 3))) + "]"
    keys = [rng.choice(["a", "b", "side", "c,", "d:", 'e\\"', "\\u0061", "f{"])
            for _ in range(rng.choice([1, 2, 3, 5, KEYS_COMPARED + 2]))]
    return "{" + ", ".join(f'"{key}": {_random_json(rng, depth + 1)}' for key in keys) + "}"


def test_repeated_keys_are_found_as_python_finds_them() -> None:
    rng = random.Random(11)
    found = unsure = 0
    for _ in range(5000):
        document = _random_json(rng).encode()
        assert_repeated_key_as_python(document)
        answer = orderwire.repeated_key(document)
        found += isinstance(answer, str)
        unsure += answer is Ellipsis
    assert found > 500 and unsure > 100, (found, unsure)
    for document, levels, answer in ((b'{"a": 1, "b": {"a": 2}}', 0, None),
                                     (b'{"a": {"b": 1, "b": 2}, "a": 3}', 0, "b"),
                                     (b'{"a": {"b": 1, "b": 2}, "a": 3}', 1, "a"),
                                     (b'{"orders": [{"x": 1, "x": 2}]}', 1, None),
                                     ('{"\\u0061": 1, "a": 2}', 0, Ellipsis),
                                     ('{"\\"": 1, "\\"": 2}', 0, '\\"')):
        assert orderwire.repeated_key(document, levels) == answer, document
