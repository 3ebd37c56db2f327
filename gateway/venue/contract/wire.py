"""The engine's wire format as the Python side uses it, all of it from the descriptor
generated from engine/proto/engine.proto: nothing is retyped.

The venue's words (buy, gtc, partially_filled) for the protobuf enums; the keys of the
fields the hot paths write byte by byte (key); the gRPC method paths the submitter and
the writer call with raw bytes (method_path); and the few bytes the submitter adds to a
gateway-encoded Command: protobuf merges concatenated messages, so appending fields to
encoded bytes sets them without decoding anything.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor

from venue.enginepb import engine_pb2 as pb


def _words(enum, prefix: str) -> dict[int, str]:
    return {number: name.removeprefix(prefix).lower()
            for name, number in enum.items() if not name.endswith("UNSPECIFIED")}


SIDE_WORDS = _words(pb.Side, "SIDE_")
ORDER_TYPE_WORDS = _words(pb.OrderType, "ORDER_TYPE_")
TIME_IN_FORCE_WORDS = _words(pb.TimeInForce, "TIME_IN_FORCE_")
EXEC_TYPE_WORDS = _words(pb.ExecType, "EXEC_TYPE_")
ORDER_STATUS_WORDS = _words(pb.OrderStatus, "ORDER_STATUS_")
# An order in one of these is closed: nothing more happens to it.
CLOSED_STATUSES = frozenset({"filled", "canceled", "rejected", "expired"})
REJECT_REASON_WORDS = {number: word for number, word in
                       _words(pb.RejectReason, "REJECT_REASON_").items() if number != 0}

SIDES = {word: number for number, word in SIDE_WORDS.items()}
ORDER_TYPES = {word: number for number, word in ORDER_TYPE_WORDS.items()}
TIMES_IN_FORCE = {word: number for number, word in TIME_IN_FORCE_WORDS.items()}


def field_number(message: str, field: str) -> int:
    return pb.DESCRIPTOR.message_types_by_name[message].fields_by_name[field].number


_LENGTH_DELIMITED = (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_STRING,
                     FieldDescriptor.TYPE_BYTES)


def key(message: str, field: str) -> bytes:
    """The encoded key (field number and wire type) of `message`.`field`."""
    descriptor = pb.DESCRIPTOR.message_types_by_name[message].fields_by_name[field]
    wire_type = 2 if descriptor.type in _LENGTH_DELIMITED else 0  # varints otherwise
    return _encode_varint(descriptor.number << 3 | wire_type)


def method_path(method: str) -> str:
    """The gRPC path of a MatchingEngine method: /package.Service/Method."""
    service = pb.DESCRIPTOR.services_by_name["MatchingEngine"]
    return f"/{service.full_name}/{service.methods_by_name[method].name}"


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = 1 << 14
_SMALL_VARINTS = [_encode_varint(v) for v in range(_SMALL)]
_TRACEPARENT = key("Command", "traceparent")
_SHARD, _STREAM_MS, _STREAM_SEQ = (key("Command", "shard"), key("Command", "stream_ms"),
                                   key("Command", "stream_seq"))
_ENTRY_INDEX = key("Command", "entry_index")
_BATCH_ID, _COMMANDS = key("CommandBatch", "batch_id"), key("CommandBatch", "commands")
# Command.entry_index of the first entries' commands, ready to append.
_ENTRY_INDEX_FIELDS = [_ENTRY_INDEX + v for v in _SMALL_VARINTS]


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
    """Command.traceparent, encoded."""
    return b"".join((_TRACEPARENT, varint(len(traceparent)), traceparent)) if traceparent else b""


def source_fields(shard: int, stream_ms: int, stream_seq: int) -> bytes:
    """Command.shard, stream_ms and stream_seq, encoded: the same for every command of
    one stream entry."""
    return b"".join((_SHARD, varint(shard), _STREAM_MS, varint(stream_ms),
                     _STREAM_SEQ, varint(stream_seq)))


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
    parts = [_BATCH_ID, varint(batch_id)]
    append = parts.append
    for trace, source, commands in entries:
        for index, command in enumerate(commands):
            tail = _ENTRY_INDEX_FIELDS[index] if index < _SMALL else _ENTRY_INDEX + varint(index)
            append(_COMMANDS)
            append(varint(len(trace) + len(command) + len(source) + len(tail)))
            append(trace)
            append(command)
            append(source)
            append(tail)
    return b"".join(parts)


# Channel options for every client of the engine: batches of many thousand commands
# exceed gRPC's default 4 MiB message limit.
GRPC_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
# A call that follows the engine (the market feed's Replay) may hear nothing for as long
# as its partition is quiet: a ping every 2 s, unanswered within 2 s, ends it, so an
# engine gone without a word (a host down, a network cut) is noticed. The engine accepts
# pings this often (kMinPingIntervalMs in engine/src/main.cpp). gRPC 1.85 times an
# unanswered ping out by ping_timeout_ms (a minute unless set), not keepalive_timeout_ms.
FOLLOW_GRPC_OPTIONS = GRPC_OPTIONS + [("grpc.keepalive_time_ms", 2000),
                                      ("grpc.keepalive_timeout_ms", 2000),
                                      ("grpc.http2.ping_timeout_ms", 2000),
                                      ("grpc.http2.max_pings_without_data", 0)]
