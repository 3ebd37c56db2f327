"""The rows the writer sends Postgres, in COPY's binary format: the columns of each
table in the order their rows are encoded, and the encoded text of the venue's words.

Rows go to Postgres in COPY's binary format, encoded with struct (and in C by
venue._reportwire, which takes these encodings as arguments): asyncpg's per-value
encoding of records was a third of the writer. A row is its field count, then per field
its length (-1: NULL) and bytes; integers big-endian, a timestamptz is microseconds
since 2000-01-01 UTC.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import asyncpg

from venue.contract.wire import (EXEC_TYPE_WORDS, ORDER_STATUS_WORDS, ORDER_TYPE_WORDS,
                                 REJECT_REASON_WORDS, SIDE_WORDS, TIME_IN_FORCE_WORDS)
from venue.enginepb import engine_pb2 as pb

# Columns in the order their rows are encoded: fixed-width first, text last (see Rows).
EXECUTION_COLUMNS = ("partition", "sequence", "order_id", "last_qty", "last_px", "cum_qty",
                      "leaves_qty", "cum_notional", "engine_time", "trade_id", "exec_type",
                      "order_status", "reject_reason")
TRADE_COLUMNS = ("partition", "trade_id", "sequence", "instrument_id", "price", "quantity",
                  "buy_order_id", "sell_order_id", "engine_time", "aggressor_side")
ORDER_COLUMNS = ("order_id", "account_id", "instrument_id", "post_only", "price", "quantity",
                  "cum_qty", "leaves_qty", "cum_notional", "partition", "last_sequence",
                  "created_at", "updated_at", "client_order_id", "side", "type",
                  "time_in_force", "status", "reject_reason")
ORDER_SQL_TYPES = ("bigint", "bigint", "integer", "boolean", "bigint", "bigint", "bigint", "bigint",
                "bigint", "integer", "bigint", "timestamptz", "timestamptz", "text", "text",
                "text", "text", "text", "text")

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
COPY_TRAILER = b"\xff\xff"
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in unix microseconds
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
NULL = b"\xff\xff\xff\xff"

# (count, then length and value of each fixed-width column), the text columns follow.
EXECUTION_ROW = struct.Struct(">h" + "ii" + "iq" * 8)  # trade_id NULL: in the text part
TRADE_EXECUTION_ROW = struct.Struct(">h" + "ii" + "iq" * 9)
TRADE_ROW = struct.Struct(">h" + "ii" + "iq" * 2 + "ii" + "iq" * 5)
# ... the last "i" is the length of client_order_id, whose bytes follow.
ORDER_ROW = struct.Struct(">h" + "iq" * 2 + "ii" + "i?" + "iq" * 5 + "ii" + "iq" * 3 + "i")


def text(word: str | None) -> bytes:
    if word is None:
        return NULL
    data = word.encode()
    return struct.pack(">i", len(data)) + data


class Encoded(dict):
    """The encoded text fields of a combination of enum numbers, made when first seen."""

    def __init__(self, encode) -> None:
        super().__init__()
        self.encode = encode

    def __missing__(self, key: tuple) -> bytes:
        value = self[key] = self.encode(*key)
        return value


def reason_word(reason: int) -> str | None:
    """The word of a reject reason, None for none; KeyError for one the writer does not
    know (an engine newer than the writer): such a report is set aside, not stored
    without its reason."""
    return None if reason == pb.REJECT_REASON_NONE else REJECT_REASON_WORDS[reason]


# exec_type, order_status, reject_reason (and trade_id's NULL before them when not a
# trade); side, type, time_in_force; status, reject_reason. An unknown exec type, status
# or reason raises KeyError (the event is set aside); an unknown order term is the
# default, as the engine rejects such an order and the orders table takes no other.
EXECUTION_TEXT = Encoded(lambda exec_type, status, reason: b"".join((
    b"" if exec_type == pb.EXEC_TYPE_TRADE else NULL, text(EXEC_TYPE_WORDS[exec_type]),
    text(ORDER_STATUS_WORDS[status]), text(reason_word(reason)))))
ORDER_TERMS_TEXT = Encoded(lambda side, type_, time_in_force: b"".join((
    text(SIDE_WORDS.get(side, "buy")), text(ORDER_TYPE_WORDS.get(type_, "limit")),
    text(TIME_IN_FORCE_WORDS.get(time_in_force, "gtc")))))
ORDER_STATE_TEXT = Encoded(lambda status, reason: text(ORDER_STATUS_WORDS[status])
                             + text(reason_word(reason)))
SIDE_TEXT = {number: text(word) for number, word in SIDE_WORDS.items()}


async def copy_rows(connection: asyncpg.Connection, table: str, columns: tuple[str, ...],
                rows: bytearray) -> None:
    """COPY encoded rows, one after another, into `table`."""
    # One buffer, not an async iterator: asyncpg then sends it without a round of its
    # flow control per chunk, which cost more than the copy of the bytes. (A memoryview:
    # asyncpg would take plain bytes for a file name.)
    data = memoryview(b"".join((COPY_HEADER, rows, COPY_TRAILER)))
    await connection.copy_to_table(table, source=data, columns=columns, format="binary")
