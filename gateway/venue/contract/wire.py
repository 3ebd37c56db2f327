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


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = 1 << 14
_SMALL_VARINTS = [_encode_varint(v) for v in range(_SMALL)]
# Command.entry_index (field 5) of the first entries' commands, ready to append.
_ENTRY_INDEX_FIELDS = [b"\x28" + v for v in _SMALL_VARINTS]


def varint(value: int) -> bytes:
    """A protobuf varint of a value >= 0 (small ones come from a table; order ids and
    prices up to 2**28 are spelled out: the hot path encodes several per order)."""
    if value < _SMALL:
        return _SMALL_VARINTS[value]
    if value < 1 << 21:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14))
    if value < 1 << 28:
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80,
                      value >> 14 & 0x7F | 0x80, value >> 21))
    return _encode_varint(value)


def traceparent_field(traceparent: bytes) -> bytes:
    """Command.traceparent (field 4), encoded."""
    return b"".join((b"\x22", varint(len(traceparent)), traceparent)) if traceparent else b""


def source_fields(shard: int, stream_ms: int, stream_seq: int) -> bytes:
    """Command.shard, stream_ms and stream_seq, encoded: the same for every command of
    one stream entry."""
    return b"".join((b"\x08", varint(shard), b"\x10", varint(stream_ms),
                     b"\x18", varint(stream_seq)))


def with_traceparent(command: bytes, traceparent: bytes) -> bytes:
    """`command` with Command.traceparent set: an order coalesced into an entry with
    other requests' orders keeps its own request's trace."""
    return command + traceparent_field(traceparent)


def command_batch(batch_id: int, entries: list[tuple[bytes, bytes, list[bytes]]]) -> bytes:
    """An encoded CommandBatch of gateway-encoded commands, grouped by stream entry.

    `entries` holds (traceparent_field of the entry's traceparent, source_fields of the
    entry, its commands). Each command gets the entry's traceparent put before it, and
    the entry's source and its index in the entry appended; nothing else is touched.
    The commands of a batch request carry no traceparent of their own, so the entry's
    is theirs; an order that has one (with_traceparent) keeps it, as protobuf's last
    value of a field wins.
    """
    parts = [b"\x08", varint(batch_id)]
    append = parts.append
    for trace, source, commands in entries:
        for index, command in enumerate(commands):
            tail = _ENTRY_INDEX_FIELDS[index] if index < _SMALL else b"\x28" + varint(index)
            append(b"\x12")
            append(varint(len(trace) + len(command) + len(source) + len(tail)))
            append(trace)
            append(command)
            append(source)
            append(tail)
    return b"".join(parts)


# Channel options for every client of the engine: batches of many thousand commands
# exceed gRPC's default 4 MiB message limit.
GRPC_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
