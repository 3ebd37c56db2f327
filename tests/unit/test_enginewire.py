"""The submitter's byte-level additions to gateway-encoded commands."""

from venue.enginepb import engine_pb2 as pb
from venue.enginewire import SIDES, TIMES_IN_FORCE, command_batch, with_source


def gateway_command(order_id: int) -> bytes:
    return pb.Command(new_order=pb.NewOrder(
        order_id=order_id, client_order_id=f"c{order_id}", account_id=7, instrument_id=1,
        side=SIDES["sell"], type=pb.ORDER_TYPE_LIMIT, time_in_force=TIMES_IN_FORCE["ioc"],
        price=3_000_000, quantity=5000)).SerializeToString()


def test_appended_source_fields_decode_as_if_encoded_together():
    traceparent = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    encoded = with_source(gateway_command(42), 3, 1_700_000_000_123, 2**40, traceparent)
    command = pb.Command.FromString(encoded)
    assert (command.shard, command.stream_ms, command.stream_seq) == (3, 1_700_000_000_123, 2**40)
    assert command.traceparent == traceparent.decode()
    assert command.new_order.order_id == 42
    assert command.new_order.side == pb.SIDE_SELL
    assert command.new_order.time_in_force == pb.TIME_IN_FORCE_IOC


def test_command_batch_keeps_every_command_in_order():
    commands = [with_source(gateway_command(i), 0, 1, i, b"") for i in range(1, 300)]
    batch = pb.CommandBatch.FromString(command_batch(2**33, commands))
    assert batch.batch_id == 2**33
    assert [c.new_order.order_id for c in batch.commands] == list(range(1, 300))
    assert [c.stream_seq for c in batch.commands] == list(range(1, 300))


def test_empty_batch_is_just_its_id():
    assert pb.CommandBatch.FromString(command_batch(5, [])).commands == []
