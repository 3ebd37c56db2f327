"""The submitter's byte-level additions to gateway-encoded commands."""

from venue.enginepb import engine_pb2 as pb
from venue.enginewire import (SIDES, TIMES_IN_FORCE, command_batch, source_fields, varint,
                              with_traceparent)
from venue.queue import frame, split_frames

TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def gateway_command(order_id: int) -> bytes:
    return pb.Command(new_order=pb.NewOrder(
        order_id=order_id, client_order_id=f"c{order_id}", account_id=7, instrument_id=1,
        side=SIDES["sell"], type=pb.ORDER_TYPE_LIMIT, time_in_force=TIMES_IN_FORCE["ioc"],
        price=3_000_000, quantity=5000)).SerializeToString()


def test_appended_source_fields_decode_as_if_encoded_together():
    source = source_fields(3, 1_700_000_000_123, 2**40)
    command = with_traceparent(gateway_command(42), TRACEPARENT)
    batch = pb.CommandBatch.FromString(command_batch(1, [(source, [command])]))
    [command] = batch.commands
    assert (command.shard, command.stream_ms, command.stream_seq, command.entry_index) == (
        3, 1_700_000_000_123, 2**40, 0)
    assert command.traceparent == TRACEPARENT.decode()
    assert command.new_order.order_id == 42
    assert command.new_order.side == pb.SIDE_SELL
    assert command.new_order.time_in_force == pb.TIME_IN_FORCE_IOC


def test_command_batch_keeps_every_command_in_order_with_its_place_in_its_entry():
    entries = [(source_fields(0, 1, seq), [gateway_command(seq * 1000 + i)
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
    for value in (1, 127, 128, 16383, 16384, 2**32, 2**63 - 1):
        assert pb.HealthResponse(commands_applied=value).SerializeToString() == \
            b"\x20" + varint(value)


def test_an_entry_splits_back_into_its_commands():
    commands = [gateway_command(i) for i in range(1, 400)] + [b"", b"x" * 20000]
    assert split_frames(b"".join(frame(c) for c in commands)) == commands
