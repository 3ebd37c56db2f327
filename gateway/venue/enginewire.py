"""The engine's wire format as the Python side uses it.

The venue's words (buy, gtc, partially_filled) for the protobuf enums, and the few
bytes the submitter adds to a gateway-encoded Command: protobuf merges concatenated
messages, so appending fields to encoded bytes sets them without decoding anything.
"""

from __future__ import annotations

from venue.enginepb import engine_pb2 as pb


def _words(enum, prefix: str) -> dict[int, str]:
    return {number: name.removeprefix(prefix).lower()
            for name, number in enum.items() if not name.endswith("UNSPECIFIED")}


SIDE_WORDS = _words(pb.Side, "SIDE_")
ORDER_TYPE_WORDS = _words(pb.OrderType, "ORDER_TYPE_")
TIME_IN_FORCE_WORDS = _words(pb.TimeInForce, "TIME_IN_FORCE_")
EXEC_TYPE_WORDS = _words(pb.ExecType, "EXEC_TYPE_")
ORDER_STATUS_WORDS = _words(pb.OrderStatus, "ORDER_STATUS_")
REJECT_REASON_WORDS = {number: word for number, word in
                       _words(pb.RejectReason, "REJECT_REASON_").items() if number != 0}

SIDES = {word: number for number, word in SIDE_WORDS.items()}
ORDER_TYPES = {word: number for number, word in ORDER_TYPE_WORDS.items()}
TIMES_IN_FORCE = {word: number for number, word in TIME_IN_FORCE_WORDS.items()}


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def with_source(command: bytes, shard: int, stream_ms: int, stream_seq: int,
                traceparent: bytes) -> bytes:
    """`command` with Command.shard, stream_ms, stream_seq and traceparent set."""
    return b"".join((
        command,
        b"\x08", _varint(shard),
        b"\x10", _varint(stream_ms),
        b"\x18", _varint(stream_seq),
        b"\x22", _varint(len(traceparent)), traceparent,
    ))


def command_batch(batch_id: int, commands: list[bytes]) -> bytes:
    """An encoded CommandBatch of already-encoded Commands."""
    parts = [b"\x08", _varint(batch_id)]
    for command in commands:
        parts += (b"\x12", _varint(len(command)), command)
    return b"".join(parts)
