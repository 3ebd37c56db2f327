"""The entries of the venue's streams and hashes, field by field: written by one part,
read by another, so each format is said here once.

An order-stream entry holds the commands of one request for one shard: field `cmds` is
the gateway-encoded engine Commands (bodies only), each preceded by its length as a
protobuf varint (frame, split_frames), and field `traceparent` the request's W3C trace
context. A batch of a thousand orders is one entry, so Redis and the submitter work per
request, not per order; the submitter splits `cmds` and gives each command its entry's
traceparent, stream id and its index within the entry. (Single orders of several
requests that arrive together share one entry; each of those commands carries its own
traceparent, which wins over the entry's.) Field `n` counts the new orders the shard
has queued.

An events-stream entry holds one ReportBatch (field `batch`) and the shards' marks it
answers (field `marks`, Mark). The persisted-marks hash holds per shard "ms-seq count"
(unpersisted_orders reads it).
"""

from __future__ import annotations

from typing import NamedTuple

from venue.contract.wire import varint

# Entry fields.
FIELD_COMMANDS = "cmds"
FIELD_TRACEPARENT = "traceparent"
FIELD_BATCH = "batch"
# An orders-stream entry's count of the new orders its shard has queued, its own included.
FIELD_QUEUED = "n"
# An events entry's marks: per shard, the last orders-stream entry the batch answered,
# and that entry's count (FIELD_QUEUED), as "shard ms-seq count;" each.
FIELD_MARKS = "marks"

class Mark(NamedTuple):
    """How far a shard's orders are answered by the engine (in an events entry's marks)
    or persisted (in the persisted marks): through `entry` of its stream, `queued` new
    orders in all."""

    shard: int
    entry: tuple[int, int]
    queued: int


def format_marks(marks: list[Mark]) -> bytes:
    return "".join(f"{m.shard} {m.entry[0]}-{m.entry[1]} {m.queued};" for m in marks).encode()


def parse_marks(data: bytes) -> list[Mark]:
    marks = []
    for part in data.decode().split(";"):
        if part:
            shard, entry, queued = part.split(" ")
            marks.append(Mark(int(shard), parse_stream_id(entry), int(queued)))
    return marks


def unpersisted_orders(queued: dict, persisted: dict) -> int:
    """New orders queued and not yet in Postgres, from HGETALL of the queued counts and
    of the persisted marks."""
    total = 0
    for shard, count in queued.items():
        mark = persisted.get(shard)
        total += max(0, int(count) - (int(mark.split(b" ")[1]) if mark else 0))
    return total


def parse_stream_id(stream_id: bytes | str) -> tuple[int, int]:
    """A Redis stream id "ms-seq" as two integers."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq)


def frame(command: bytes) -> bytes:
    return varint(len(command)) + command


def split_frames(data: bytes) -> list[bytes]:
    """The commands of an entry's `cmds` field, in order; ValueError when the framing
    is broken (a length cut short, or past the end)."""
    commands, at, end = [], 0, len(data)
    while at < end:
        length, shift = 0, 0
        while True:
            if at >= end or shift > 35:
                raise ValueError(f"a command's length at byte {at} is cut short")
            byte = data[at]
            at += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        if at + length > end:
            raise ValueError(f"a command of {length} bytes at byte {at} runs past the end "
                             f"({end})")
        commands.append(data[at:at + length])
        at += length
    return commands
