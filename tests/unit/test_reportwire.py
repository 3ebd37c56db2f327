"""venue._reportwire (C) against the protobuf and Python paths it stands in for: the same
report batches give the same COPY rows, order states, covered sequences and heads, and
the same orders' rows."""

from __future__ import annotations

import random
import sys

import pytest

from venue.enginepb import engine_pb2 as pb
from venue.writer import _ORDER_STATE_TEXT, Rows, reportwire

pytestmark = pytest.mark.skipif(reportwire is None, reason="never: the build compiles it")

STATUSES = [pb.ORDER_STATUS_NEW, pb.ORDER_STATUS_PARTIALLY_FILLED, pb.ORDER_STATUS_FILLED,
            pb.ORDER_STATUS_CANCELED, pb.ORDER_STATUS_REJECTED]


def test_the_extension_is_built() -> None:
    assert reportwire is not None


def random_batch(rng: random.Random, partition: int, sequence: int,
                 order_ids: list[int]) -> pb.ReportBatch:
    batch = pb.ReportBatch(batch_id=rng.randint(0, 1 << 40), partition=partition)
    now = 1_795_000_000_000_000_000 + rng.randint(0, 10**12)
    for _ in range(rng.randint(0, 40)):
        sequence += 1
        event = batch.events.add(sequence=sequence, timestamp_ns=now + rng.randint(0, 5000))
        kind = rng.random()
        if kind < 0.7:
            order_id = rng.choice(order_ids)
            exec_type = rng.choice([pb.EXEC_TYPE_NEW, pb.EXEC_TYPE_TRADE,
                                    pb.EXEC_TYPE_CANCELED, pb.EXEC_TYPE_REJECTED])
            event.report.CopyFrom(pb.ExecutionReport(
                order_id=order_id, client_order_id=rng.choice(["c-1", "x" * 63, "é-ü", ""]),
                account_id=rng.randint(1, 1 << 40), instrument_id=rng.randint(1, 65535),
                side=rng.choice([pb.SIDE_BUY, pb.SIDE_SELL]),
                type=rng.choice([pb.ORDER_TYPE_LIMIT, pb.ORDER_TYPE_MARKET]),
                time_in_force=rng.choice([pb.TIME_IN_FORCE_GTC, pb.TIME_IN_FORCE_IOC]),
                price=rng.choice([0, 1, 10_000, (1 << 62) + 5, -7]),
                quantity=rng.randint(0, 1 << 33), exec_type=exec_type,
                order_status=rng.choice(STATUSES), last_qty=rng.randint(0, 1000),
                last_px=rng.randint(0, 1 << 40), cum_qty=rng.randint(0, 10**6),
                leaves_qty=rng.randint(0, 10**6), cum_notional=rng.randint(0, 1 << 60),
                reject_reason=rng.choice([0, 0, 1, 2]),
                trade_id=rng.randint(1, 1 << 50) if exec_type == pb.EXEC_TYPE_TRADE else 0,
                post_only=rng.random() < 0.3, shard=rng.randint(0, 3),
                stream_ms=rng.randint(0, 1 << 41), stream_seq=rng.randint(0, 9)))
        elif kind < 0.85:
            event.trade.CopyFrom(pb.Trade(
                trade_id=rng.randint(1, 1 << 50), instrument_id=rng.randint(1, 65535),
                price=rng.randint(1, 1 << 40), quantity=rng.randint(1, 1 << 30),
                buy_order_id=rng.choice(order_ids), sell_order_id=rng.choice(order_ids),
                aggressor_side=rng.choice([pb.SIDE_BUY, pb.SIDE_SELL])))
        elif kind < 0.95:
            event.level.CopyFrom(pb.LevelUpdate(instrument_id=3, side=pb.SIDE_BUY, price=5,
                                                quantity=9, action=1))
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
            batch = random_batch(rng, rng.randint(0, 3), sequence, order_ids)
            sequence += len(batch.events) + rng.choice([0, 0, 5])  # gaps happen
            by_python.add(batch)
            by_c.add_serialized(batch.SerializeToString())
        assert bytes(by_c.executions) == bytes(by_python.executions)
        assert bytes(by_c.trades) == bytes(by_python.trades)
        assert by_c._orders == by_python._orders
        # The orders' rows made in C (order_rows) and in Python (_order_rows).
        assert by_c.order_rows() == by_python._order_rows()
        assert (by_c.covered, by_c.heads) == (by_python.covered, by_python.heads)


def test_an_empty_batch_and_a_malformed_one() -> None:
    rows = Rows()
    rows.add_serialized(pb.ReportBatch(partition=2, next_sequence=9).SerializeToString())
    assert (rows.covered, rows.heads, bytes(rows.executions)) == ([], {2: 8}, b"")
    with pytest.raises(ValueError, match="malformed ReportBatch"):
        rows.add_serialized(b"\x1a\x05\x08")  # an event that ends early


def test_mangled_batches_raise_or_read_and_never_crash() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        data = bytearray(random_batch(rng, 1, 100, [7, 8, 9]).SerializeToString())
        for _ in range(rng.randint(1, 3)):
            if data:
                at = rng.randrange(len(data))
                if rng.random() < 0.5:
                    data[at] = rng.randrange(256)
                else:
                    del data[at:]
        try:
            Rows().add_serialized(bytes(data))
        except (ValueError, KeyError, UnicodeDecodeError):
            pass  # malformed, an unknown enum, or a clientOrderId that is not UTF-8


def test_an_order_state_that_is_not_rows_raises() -> None:
    rows = Rows()
    rows._orders[5] = (1, 2)
    with pytest.raises(TypeError, match="not Rows'"):
        rows.order_rows()
    rows._orders[5] = (1, 0, 0, True, 1 << 40, 1, 1, 1, 0, 0, 0, 0,
                       (1, 1, False, "c", 1, 1, 1))
    with pytest.raises(OverflowError, match="out of range"):
        rows.order_rows()


def test_order_rows_keep_no_reference_to_the_texts_they_look_up() -> None:
    rows = Rows()
    rows._orders[1] = (1, 0, 0, True, 1, 1, 1, 1, 0, 0, 0, 0, (1, 1, False, "c", 1, 1, 1))
    text = _ORDER_STATE_TEXT[1, 0]
    before = sys.getrefcount(text)
    for _ in range(50):
        rows.order_rows()
    assert sys.getrefcount(text) == before
