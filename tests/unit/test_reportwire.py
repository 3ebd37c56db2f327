"""venue._reportwire (C) against the protobuf and Python paths it stands in for: the same
report batches give the same COPY rows, order states, covered sequences and heads, and
the same orders' rows; and the market feed the same level changes and trades."""

from __future__ import annotations

import random
from collections.abc import Iterator
import sys

import pytest

from venue.enginepb import engine_pb2 as pb
from venue._reportwire import OrderState, OrderTerms, market_events
from venue.writer.copy_format import ORDER_STATE_TEXT, PG_EPOCH_US
from venue.writer.rows import MINUTE_US, Rows

STATUSES = [pb.ORDER_STATUS_NEW, pb.ORDER_STATUS_PARTIALLY_FILLED, pb.ORDER_STATUS_FILLED,
            pb.ORDER_STATUS_CANCELED, pb.ORDER_STATUS_REJECTED]


def random_batch(rng: random.Random, partition: int, sequence: int,
                 order_ids: list[int], unknown: int = 0) -> pb.ReportBatch:
    """`unknown`: how often (against the known ones) an enum takes a value the writer
    does not know."""
    batch = pb.ReportBatch(batch_id=rng.randint(0, 1 << 40), partition=partition)
    now = 1_795_000_000_000_000_000 + rng.randint(0, 10**12)
    for _ in range(rng.randint(0, 40)):
        sequence += 1
        event = batch.events.add(sequence=sequence, timestamp_ns=now + rng.randint(0, 5000))
        kind = rng.random()
        if kind < 0.7:
            order_id = rng.choice(order_ids + [0])
            exec_type = rng.choice([pb.EXEC_TYPE_NEW, pb.EXEC_TYPE_TRADE, pb.EXEC_TYPE_CANCELED,
                                    pb.EXEC_TYPE_REJECTED, pb.EXEC_TYPE_CANCEL_REJECTED,
                                    pb.EXEC_TYPE_REPLACE_REJECTED])
            event.report.CopyFrom(pb.ExecutionReport(
                order_id=order_id, client_order_id=rng.choice(["c-1", "x" * 63, "é-ü", ""]),
                account_id=rng.randint(1, 1 << 40), instrument_id=rng.randint(1, 65535),
                side=rng.choice([pb.SIDE_BUY, pb.SIDE_SELL]),
                type=rng.choice([pb.ORDER_TYPE_LIMIT, pb.ORDER_TYPE_MARKET]),
                time_in_force=rng.choice([pb.TIME_IN_FORCE_GTC, pb.TIME_IN_FORCE_IOC]),
                price=rng.choice([0, 1, 10_000, (1 << 62) + 5, -7]),
                quantity=rng.randint(0, 1 << 33), exec_type=exec_type,
                order_status=rng.choice(STATUSES + [0] * unknown),
                last_qty=rng.randint(0, 1000),
                last_px=rng.randint(0, 1 << 40), cum_qty=rng.randint(0, 10**6),
                leaves_qty=rng.randint(0, 10**6), cum_notional=rng.randint(0, 1 << 60),
                reject_reason=rng.choice([0, 0, 1, 2, pb.REJECT_REASON_TOO_LATE_TO_CANCEL]
                                         + [99] * unknown),
                trade_id=rng.randint(1, 1 << 50) if exec_type == pb.EXEC_TYPE_TRADE else 0,
                post_only=rng.random() < 0.3, shard=rng.randint(0, 3),
                stream_ms=rng.randint(0, 1 << 41), stream_seq=rng.randint(0, 9)))
        elif kind < 0.85:
            event.trade.CopyFrom(pb.Trade(
                trade_id=rng.randint(1, 1 << 50), instrument_id=rng.randint(1, 65535),
                price=rng.randint(1, 1 << 40), quantity=rng.randint(1, 1 << 30),
                buy_order_id=rng.choice(order_ids), sell_order_id=rng.choice(order_ids),
                aggressor_side=rng.choice([pb.SIDE_BUY, pb.SIDE_SELL] + [7] * unknown)))
        elif kind < 0.95:
            event.level.CopyFrom(pb.LevelUpdate(
                instrument_id=rng.randint(1, 65535), side=rng.choice([pb.SIDE_BUY, pb.SIDE_SELL]),
                price=rng.choice([1, 5, (1 << 62) + 5, -7]), quantity=rng.choice([0, 9, 1 << 40]),
                action=rng.randint(1, 3)))
        # else: an event with no body
    if rng.random() < 0.8:
        batch.next_sequence = sequence + 1
    return batch


def test_random_report_batches_read_the_same_in_c_and_in_python() -> None:
    rng = random.Random(11)
    for run in range(60):
        by_python, by_c = Rows(), Rows()
        sequence = rng.randint(0, 10**6)
        order_ids = [rng.randint(1, 1 << 50) for _ in range(rng.randint(1, 30))]
        for _ in range(rng.randint(1, 8)):
            batch = random_batch(rng, rng.randint(0, 3), sequence, order_ids, unknown=run % 2)
            sequence += len(batch.events) + rng.choice([0, 0, 5])  # gaps happen
            by_python.add(batch)
            by_c.add_serialized(batch.SerializeToString())
        assert bytes(by_c.executions) == bytes(by_python.executions)
        assert by_c.set_aside == by_python.set_aside
        assert bytes(by_c.trades) == bytes(by_python.trades)
        assert by_c._orders == by_python._orders
        assert by_c.candle_values() == by_python.candle_values()
        # The orders' rows made in C (order_rows) and in Python (order_rows_reference).
        assert by_c.order_rows() == by_python.order_rows_reference()
        assert (by_c.covered, by_c.heads) == (by_python.covered, by_python.heads)


def test_an_empty_batch_and_a_malformed_one() -> None:
    rows = Rows()
    rows.add_serialized(pb.ReportBatch(partition=2, next_sequence=9).SerializeToString())
    assert (rows.covered, rows.heads, bytes(rows.executions)) == ([], {2: 8}, b"")
    with pytest.raises(ValueError, match="malformed ReportBatch"):
        rows.add_serialized(b"\x1a\x05\x08")  # an event that ends early


def test_mangled_batches_are_set_aside_or_raise_value_error_and_never_crash() -> None:
    rng = random.Random(5)
    set_aside = raised = 0
    for _ in range(3000):
        data = bytearray(random_batch(rng, 1, 100, [7, 8, 9]).SerializeToString())
        for _ in range(rng.randint(1, 3)):
            if data:
                at = rng.randrange(len(data))
                if rng.random() < 0.5:
                    data[at] = rng.randrange(256)
                else:
                    del data[at:]
        rows = Rows()
        try:
            rows.add_serialized(bytes(data))
        except ValueError:  # the framing is broken: the caller sets the whole batch aside
            raised += 1
            continue
        for letter in rows.set_aside:  # an unknown enum, a clientOrderId that is not UTF-8
            assert letter.sequence and letter.data and letter.error
            set_aside += 1
    assert set_aside > 50 and raised > 50


def test_an_event_without_a_sequence_that_cannot_be_read_refuses_the_batch() -> None:
    """Found by the atheris fuzzer (tests/fuzz/reportwire_fuzz.py): an unknown side on a
    trade without a sequence raised KeyError, which the writer does not expect of a
    batch; it is the ValueError of a batch that cannot be placed."""
    data = pb.ReportBatch(partition=0, events=[pb.Event(trade=pb.Trade(
        trade_id=1, instrument_id=1, price=5, quantity=1, aggressor_side=7))]
    ).SerializeToString()
    with pytest.raises(ValueError, match="without a sequence"):
        Rows().add_serialized(data)


def test_an_event_set_aside_leaves_nothing_of_itself_in_the_rows() -> None:
    good = pb.ReportBatch(partition=1, next_sequence=3, events=[pb.Event(
        sequence=1, timestamp_ns=10**18, report=pb.ExecutionReport(
            order_id=5, client_order_id="a", exec_type=pb.EXEC_TYPE_NEW,
            order_status=pb.ORDER_STATUS_NEW, side=pb.SIDE_BUY, quantity=3, leaves_qty=3))])
    only_good = Rows()
    only_good.add_serialized(good.SerializeToString())
    bad = pb.Event(sequence=2, timestamp_ns=10**18, report=pb.ExecutionReport(
        order_id=6, client_order_id="b", exec_type=42, order_status=pb.ORDER_STATUS_NEW))
    with_bad = pb.ReportBatch()
    with_bad.CopyFrom(good)
    with_bad.events.append(bad)
    rows = Rows()
    rows.add_serialized(with_bad.SerializeToString(), source="tv:x:events:1", entry="9-0")
    assert bytes(rows.executions) == bytes(only_good.executions)
    assert rows._orders == only_good._orders
    assert rows.covered == [(1, 1, 2)]  # the sequence is accounted for: in the dead letter
    [letter] = rows.set_aside
    assert (letter.partition, letter.sequence, letter.data, letter.source, letter.entry) == (
        1, 2, bad.SerializeToString(), "tv:x:events:1", "9-0")
    assert "KeyError" in letter.error


def test_a_client_order_id_that_is_not_utf8_sets_its_report_aside() -> None:
    event = pb.Event(sequence=4, timestamp_ns=10**18, report=pb.ExecutionReport(
        order_id=5, client_order_id="XX", exec_type=pb.EXEC_TYPE_NEW,
        order_status=pb.ORDER_STATUS_NEW)).SerializeToString().replace(b"XX", b"\xff\xfe")
    data = pb.ReportBatch(partition=0).SerializeToString() + b"\x1a" + bytes([len(event)]) + event
    rows = Rows()
    rows.add_serialized(data)
    assert [(letter.sequence, letter.data) for letter in rows.set_aside] == [(4, event)]
    assert not rows.executions and not rows._orders


def test_a_refused_cancel_is_an_execution_and_leaves_its_order_as_it_was() -> None:
    new = pb.Event(sequence=1, timestamp_ns=10**18, report=pb.ExecutionReport(
        order_id=5, client_order_id="a", exec_type=pb.EXEC_TYPE_NEW,
        order_status=pb.ORDER_STATUS_NEW, quantity=3, leaves_qty=3, price=10))
    late = pb.Event(sequence=2, timestamp_ns=10**18 + 5000, report=pb.ExecutionReport(
        order_id=5, exec_type=pb.EXEC_TYPE_CANCEL_REJECTED,
        order_status=pb.ORDER_STATUS_REJECTED, reject_reason=pb.REJECT_REASON_UNKNOWN_ORDER))
    batch = pb.ReportBatch(partition=0, events=[new, late]).SerializeToString()
    only_new = Rows()
    only_new.add_serialized(pb.ReportBatch(partition=0, events=[new]).SerializeToString())
    by_c, by_python = Rows(), Rows()
    by_c.add_serialized(batch)
    by_python.add(pb.ReportBatch.FromString(batch))
    for rows in (by_c, by_python):
        assert rows._orders == only_new._orders
        assert len(rows.executions) > len(only_new.executions)


def test_an_order_state_that_is_not_rows_raises() -> None:
    rows = Rows()
    rows._orders[5] = (1, 2)
    with pytest.raises(TypeError, match="not Rows'"):
        rows.order_rows()
    rows._orders[5] = OrderState((1, 0, 0, True, 1 << 40, 1, 1, 1, 0, 0, 0, 0,
                                  OrderTerms((1, 1, False, "c", 1, 1, 1))))
    with pytest.raises(OverflowError, match="out of range"):
        rows.order_rows()


def test_order_rows_keep_no_reference_to_the_texts_they_look_up() -> None:
    rows = Rows()
    rows._orders[1] = OrderState((1, 0, 0, True, 1, 1, 1, 1, 0, 0, 0, 0,
                                  OrderTerms((1, 1, False, "c", 1, 1, 1))))
    text = ORDER_STATE_TEXT[1, 0]
    before = sys.getrefcount(text)
    for _ in range(50):
        rows.order_rows()
    assert sys.getrefcount(text) == before


def test_candles_in_c_and_in_python_are_each_minutes_trades_first_to_last() -> None:
    """Trades of a few instruments around minute boundaries, several sharing a time:
    each (instrument, minute) candle opens at the price of its first trade by (time,
    sequence) and closes at its last's, whatever order the run holds them in."""
    rng = random.Random(3)
    minute_ns = MINUTE_US * 1000
    base = 1_795_000_020 * 10**9 // minute_ns * minute_ns  # on a minute boundary
    for _ in range(40):
        by_python, by_c, trades = Rows(), Rows(), []
        sequence = rng.randint(1, 10**6)
        for _ in range(rng.randint(1, 6)):
            batch = pb.ReportBatch(partition=0)
            for _ in range(rng.randint(1, 30)):
                sequence += 1
                # Times out of order too: the engine's clock may step back.
                at_ns = base + rng.choice([-1000, 0, 0, 1000, minute_ns - 1000, minute_ns,
                                           rng.randint(-minute_ns, 2 * minute_ns)])
                trade = pb.Trade(trade_id=sequence, instrument_id=rng.choice([1, 2, 9]),
                                 price=rng.randint(1, 50), quantity=rng.randint(1, 1 << 40),
                                 aggressor_side=pb.SIDE_BUY)
                batch.events.add(sequence=sequence, timestamp_ns=at_ns, trade=trade)
                trades.append((trade.instrument_id, at_ns // 1000 - PG_EPOCH_US, sequence,
                               trade.price, trade.quantity))
            by_python.add(batch)
            by_c.add_serialized(batch.SerializeToString())
        expected: dict[tuple[int, int], list] = {}
        for instrument_id, at, seq, price, quantity in sorted(
                trades, key=lambda t: (t[1], t[2])):
            key = (instrument_id, at // MINUTE_US * MINUTE_US)
            if key not in expected:
                expected[key] = [price, price, price, price, 0, 0, at, seq, at, seq]
            candle = expected[key]
            candle[1], candle[2] = max(candle[1], price), min(candle[2], price)
            candle[3], candle[8], candle[9] = price, at, seq
            candle[4] += quantity
            candle[5] += 1
        assert by_c.candle_values() == [(*key, *candle) for key, candle in sorted(
            expected.items())]
        assert by_python.candle_values() == by_c.candle_values()


def test_a_trade_whose_minute_volume_leaves_int64_is_set_aside_and_changes_no_candle() -> None:
    def trade(sequence: int, quantity: int) -> pb.Event:
        return pb.Event(sequence=sequence, timestamp_ns=10**18, trade=pb.Trade(
            trade_id=sequence, instrument_id=4, price=10, quantity=quantity,
            aggressor_side=pb.SIDE_SELL))

    batch = pb.ReportBatch(partition=0, events=[trade(1, (1 << 63) - 5), trade(2, 9),
                                                trade(3, 4)])
    by_c, by_python = Rows(), Rows()
    by_c.add_serialized(batch.SerializeToString())
    by_python.add(batch)
    for rows in (by_c, by_python):
        [letter] = rows.set_aside
        assert letter.sequence == 2 and "out of range" in letter.error
        [candle] = rows.candle_values()
        assert candle[6:8] == ((1 << 63) - 1, 2)  # volume and trades: 1 and 3, not 2
    assert by_c.set_aside == by_python.set_aside
    assert bytes(by_c.trades) == bytes(by_python.trades)


def market_events_by_protobuf(batch: pb.ReportBatch) -> tuple[int, list[tuple]]:
    """What market_events reads, from the decoded message."""
    events = []
    for event in batch.events:
        kind = event.WhichOneof("body")
        if kind == "level":
            level = event.level
            events.append((event.sequence, event.timestamp_ns, level.instrument_id, level.side,
                           level.price, level.quantity, None))
        elif kind == "trade":
            trade = event.trade
            events.append((event.sequence, event.timestamp_ns, trade.instrument_id,
                           trade.aggressor_side, trade.price, trade.quantity, trade.trade_id))
    return batch.next_sequence, events


def test_the_market_feed_reads_the_level_changes_and_trades_protobuf_does() -> None:
    rng = random.Random(23)
    kinds = set()
    for _ in range(300):
        batch = random_batch(rng, rng.randint(0, 3), rng.randint(0, 10**9), [5, 6], unknown=1)
        batch.next_sequence = rng.choice([0, rng.randint(1, 2**64 - 1)])
        expected = market_events_by_protobuf(batch)
        assert market_events(batch.SerializeToString()) == expected
        kinds |= {event[6] is None for event in expected[1]}
    assert kinds == {True, False}  # level changes and trades were both read


def damaged_batches(rng: random.Random, count: int = 3000) -> Iterator[bytes]:
    """Serialized batches with one byte changed or their end cut off."""
    for _ in range(count):
        data = bytearray(random_batch(rng, 1, 100, [7, 8, 9]).SerializeToString())
        at = rng.randrange(len(data)) if data else 0
        if rng.random() < 0.5 and data:
            data[at] = rng.randrange(256)
        else:
            del data[at:]
        yield bytes(data)


def test_a_batch_the_market_feed_cannot_read_raises_value_error_and_never_crashes() -> None:
    with pytest.raises(ValueError, match="an event without a sequence"):
        market_events(pb.ReportBatch(events=[pb.Event(timestamp_ns=5)]).SerializeToString())
    with pytest.raises(ValueError, match="malformed ReportBatch"):
        market_events(b"\x1a\x05\x08")  # an event that ends early
    raised = 0
    for data in damaged_batches(random.Random(8)):
        try:
            _, events = market_events(data)
        except ValueError:
            raised += 1
            continue
        assert all(len(event) == 7 and event[0] for event in events)
    assert raised > 50
