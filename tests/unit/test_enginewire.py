"""The gateway's hand-encoded commands and the submitter's byte-level additions."""

import random
from types import SimpleNamespace

from venue.api.commands import encode_new_order
from venue.enginepb import engine_pb2 as pb
from venue.contract.wire import (ORDER_TYPES, SIDES, TIMES_IN_FORCE, command_batch,
                                 source_fields, traceparent_field, varint, with_traceparent)
from venue.contract.entries import frame, split_frames

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def gateway_command(order_id: int) -> bytes:
    return pb.Command(new_order=pb.NewOrder(
        order_id=order_id, client_order_id=f"c{order_id}", account_id=7, instrument_id=1,
        side=SIDES["sell"], type=pb.ORDER_TYPE_LIMIT, time_in_force=TIMES_IN_FORCE["ioc"],
        price=3_000_000, quantity=5000)).SerializeToString()


OTHER_TRACEPARENT = b"00-11111111111111111111111111111111-2222222222222222-01"


def test_added_fields_decode_as_if_encoded_together():
    source = source_fields(3, 1_700_000_000_123, 2**40)
    batch = pb.CommandBatch.FromString(command_batch(1, [(
        traceparent_field(TRACEPARENT), source, [gateway_command(42)])]))
    [command] = batch.commands
    assert (command.shard, command.stream_ms, command.stream_seq, command.entry_index) == (
        3, 1_700_000_000_123, 2**40, 0)
    assert command.traceparent == TRACEPARENT.decode()  # the entry's
    assert command.new_order.order_id == 42
    assert command.new_order.side == pb.SIDE_SELL
    assert command.new_order.time_in_force == pb.TIME_IN_FORCE_IOC


def test_a_command_with_a_traceparent_of_its_own_keeps_it_over_its_entrys():
    commands = [gateway_command(1), with_traceparent(gateway_command(2), OTHER_TRACEPARENT)]
    batch = pb.CommandBatch.FromString(command_batch(1, [
        (traceparent_field(TRACEPARENT), source_fields(0, 1, 1), commands),
        (traceparent_field(b""), source_fields(0, 1, 2), [gateway_command(3)])]))
    assert [(c.new_order.order_id, c.traceparent) for c in batch.commands] == [
        (1, TRACEPARENT.decode()), (2, OTHER_TRACEPARENT.decode()), (3, "")]


def test_command_batch_keeps_every_command_in_order_with_its_place_in_its_entry():
    entries = [(b"", source_fields(0, 1, seq), [gateway_command(seq * 1000 + i)
                                                for i in range(count)])
               for seq, count in ((1, 3), (2, 1), (3, 20000))]
    batch = pb.CommandBatch.FromString(command_batch(2**33, entries))
    assert batch.batch_id == 2**33
    expected = [(seq, i, seq * 1000 + i) for seq, count in ((1, 3), (2, 1), (3, 20000))
                for i in range(count)]
    assert [(c.stream_seq, c.entry_index, c.new_order.order_id) for c in batch.commands] == \
        expected


def test_empty_batch_is_just_its_id():
    assert pb.CommandBatch.FromString(command_batch(5, [])).commands == []


def test_varints_match_protobuf_at_every_width():
    assert varint(0) == b"\x00"
    for value in (1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**28 - 1, 2**28, 2**32,
                  2**63 - 1):
        assert pb.HealthResponse(commands_applied=value).SerializeToString() == \
            b"\x20" + varint(value)


def test_an_entry_splits_back_into_its_commands():
    commands = [gateway_command(i) for i in range(1, 400)] + [b"", b"x" * 20000]
    assert split_frames(b"".join(frame(c) for c in commands)) == commands


def test_hand_encoded_new_orders_are_byte_for_byte_what_protobuf_writes():
    rng = random.Random(7)
    for _ in range(3000):
        order = SimpleNamespace(side=rng.choice(["buy", "sell"]),
                                type=rng.choice(["limit", "market"]),
                                time_in_force=rng.choice(["gtc", "ioc", "fok", "day"]),
                                post_only=rng.random() < 0.2)
        numbers = {name: rng.choice([1, 127, 128, 2**14 - 1, 2**14, 2**21 - 1, 2**21,
                                     2**28 - 1, 2**28, 2**40, rng.randrange(1, 2**62)])
                   for name in ("order_id", "account_id", "price_ticks", "quantity_lots")}
        if order.type == "market":
            numbers["price_ticks"] = 0
        client_order_id = rng.choice(["", "c", "x" * 63, f"client-{rng.random()}"])
        instrument_id = rng.randrange(1, 65536)
        expected = pb.Command(new_order=pb.NewOrder(
            order_id=numbers["order_id"], client_order_id=client_order_id,
            account_id=numbers["account_id"], instrument_id=instrument_id,
            side=SIDES[order.side], type=ORDER_TYPES[order.type],
            time_in_force=TIMES_IN_FORCE[order.time_in_force],
            price=numbers["price_ticks"], quantity=numbers["quantity_lots"],
            post_only=order.post_only))
        encoded = encode_new_order(order, client_order_id=client_order_id,
                                   instrument_id=instrument_id, **numbers)
        assert encoded == expected.SerializeToString()
