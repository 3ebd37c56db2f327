"""The database writer: engine events from Redis into Postgres, in batches, idempotently.

Each events-stream entry is one ReportBatch. The writer reads many at once, COPYs their
rows into the tables in one transaction, then acknowledges (XACK). Executions and trades
are keyed by the engine's own numbering (partition, sequence / trade id), and an order
row only ever moves to a later sequence, so an entry written twice (a crash between
COMMIT and XACK) changes nothing: a COPY that meets a row already there is undone, and
that run goes through staging tables, from which only what is missing is moved.

Nothing the writer reads can stop it: an event it cannot store (an enum value it does
not know, a malformed report) is set aside in the venue's dead-letter stream and the
rest of its batch is written; an entry that does not decode is set aside whole (the
engine's replay then fills its sequences); and a run Postgres refuses for its data is
written entry by entry, the entry it still refuses set aside (venue.dead_letters).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import struct
import time
from collections import deque
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
from google.protobuf.message import DecodeError
from redis.asyncio import Redis
from redis import connection as redis_connection
from redis.exceptions import RedisError, ResponseError
from redis.utils import HIREDIS_AVAILABLE

from venue.config import Settings, VenueConfig
from venue.db.migrate import migrate
from venue.dead_letters import (MALFORMED_ENTRY, UNDECODABLE, UNKNOWN_VALUE, UNSTORABLE,
                                DeadLetter, set_aside)
from venue.enginepb import engine_pb2 as pb
from venue.enginepb import engine_pb2_grpc
from venue.enginewire import (EXEC_TYPE_WORDS, GRPC_OPTIONS, ORDER_STATUS_WORDS,
                              ORDER_TYPE_WORDS, REJECT_REASON_WORDS, SIDE_WORDS,
                              TIME_IN_FORCE_WORDS)
from venue import part_health
from venue.progress import SequenceProgress
from venue.queue import (FIELD_BATCH, FIELD_MARKS, WRITERS_GROUP, Keys, Mark, PersistedMarks,
                         parse_marks)

try:
    from venue import _reportwire as reportwire
except ImportError:  # not compiled: report batches are read with protobuf
    reportwire = None

log = logging.getLogger("venue.writer")

_FIELD_BATCH = FIELD_BATCH.encode()
_FIELD_MARKS = FIELD_MARKS.encode()
_READ_COUNT = 512  # events-stream entries (report batches) per read
# The most report-batch bytes one transaction takes (about 15,000 orders' reports): a
# read of a backlog is written as several runs in flight, so each commits (and its
# orders leave the unpersisted count the gateway's backpressure reads) within a fraction
# of a second, not after seconds of a run of hundreds of thousands.
_RUN_BYTES = 4 << 20
_PART = "writer"
_INTERVAL_S = 0.010  # the shortest time from one transaction's start to the next's
_CONNECTIONS = 3  # transactions in flight at once
_BLOCK_MS = 500
# Persisted entries (of the events streams and the shards' order streams) stay this long,
# for report feeds a little behind (one further behind fills its gap from the engine's
# Replay) and for inspection, then are trimmed: Redis rewrites its append-only file from
# all it holds.
_RETAIN_MS = 10_000
# A sequence missing this long was not just late: the submitter that had it died.
_GAP_GRACE_S = 3.0
_HEAD_CHECK_S = 2.0

# Columns in the order their rows are encoded: fixed-width first, text last (see Rows).
_EXECUTION_COLUMNS = ("partition", "sequence", "order_id", "last_qty", "last_px", "cum_qty",
                      "leaves_qty", "cum_notional", "engine_time", "trade_id", "exec_type",
                      "order_status", "reject_reason")
_TRADE_COLUMNS = ("partition", "trade_id", "sequence", "instrument_id", "price", "quantity",
                  "buy_order_id", "sell_order_id", "engine_time", "aggressor_side")
_ORDER_COLUMNS = ("order_id", "account_id", "instrument_id", "post_only", "price", "quantity",
                  "cum_qty", "leaves_qty", "cum_notional", "partition", "last_sequence",
                  "created_at", "updated_at", "client_order_id", "side", "type",
                  "time_in_force", "status", "reject_reason")
_ORDER_TYPES = ("bigint", "bigint", "integer", "boolean", "bigint", "bigint", "bigint", "bigint",
                "bigint", "integer", "bigint", "timestamptz", "timestamptz", "text", "text",
                "text", "text", "text", "text")

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_executions (LIKE executions) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_trades (LIKE trades) ON COMMIT DELETE ROWS;
"""


def collect_rarely() -> None:
    """Make the cyclic garbage collector of a writer process rare. A run in flight holds
    hundreds of thousands of young objects: at Python's default threshold (700 net
    allocations) the collector ran 36 times a second and carried them through every
    generation, 0.54 s of CPU in a 20 s `venue bench writer` (0.27 µs an order; gc
    callbacks timed it). Reference counting frees them; the few cycles the writer makes
    (exceptions, tasks) wait for 100,000 net allocations."""
    gc.freeze()  # what start-up made lives as long as the process: never scanned again
    gc.set_threshold(100_000, 10, 10)


async def prepare(connection: asyncpg.Connection) -> None:
    """Make a connection ready for write_rows: its staging tables, and timestamptz
    values sent as Postgres keeps them, microseconds since 2000-01-01 UTC (read back as
    datetimes): the writer has them so, and making datetime objects was a tenth of it."""
    await connection.execute(_STAGING)
    await connection.set_type_codec(
        "timestamptz", schema="pg_catalog", format="tuple",
        encoder=lambda microseconds: (microseconds,),
        decoder=lambda value: _PG_EPOCH + timedelta(microseconds=value[0]))

_MOVE = """
INSERT INTO executions SELECT * FROM stage_executions ON CONFLICT DO NOTHING;
INSERT INTO trades SELECT * FROM stage_trades ON CONFLICT DO NOTHING;
"""

# Orders that may have a row already, as one array per column: not through a temp table,
# whose use costs every commit a truncation of each ON COMMIT DELETE ROWS table.
_UPSERT_ORDERS = f"""
INSERT INTO orders ({", ".join(_ORDER_COLUMNS)})
SELECT * FROM unnest({", ".join(f"${n}::{t}[]" for n, t in enumerate(_ORDER_TYPES, 1))})
ON CONFLICT (account_id, order_id) DO UPDATE SET
    price = EXCLUDED.price, quantity = EXCLUDED.quantity, status = EXCLUDED.status,
    cum_qty = EXCLUDED.cum_qty, leaves_qty = EXCLUDED.leaves_qty,
    cum_notional = EXCLUDED.cum_notional, reject_reason = EXCLUDED.reject_reason,
    last_sequence = EXCLUDED.last_sequence, updated_at = EXCLUDED.updated_at
WHERE orders.last_sequence < EXCLUDED.last_sequence
"""

_PROGRESS = """
INSERT INTO partition_progress (partition, persisted_through) VALUES ($1, $2)
ON CONFLICT (partition) DO UPDATE SET persisted_through = EXCLUDED.persisted_through,
    updated_at = now()
WHERE partition_progress.persisted_through < EXCLUDED.persisted_through
"""

# Rows go to Postgres in COPY's binary format, encoded here with struct: asyncpg's
# per-value encoding of records was a third of the writer. A row is its field count,
# then per field its length (-1: NULL) and bytes; integers big-endian, a timestamptz is
# microseconds since 2000-01-01 UTC.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_COPY_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in unix microseconds
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_NULL = b"\xff\xff\xff\xff"
_EXEC_TYPE_NEW, _EXEC_TYPE_TRADE = pb.EXEC_TYPE_NEW, pb.EXEC_TYPE_TRADE

# (count, then length and value of each fixed-width column), the text columns follow.
_EXECUTION_ROW = struct.Struct(">h" + "ii" + "iq" * 8)  # trade_id NULL: in the text part
_TRADE_EXECUTION_ROW = struct.Struct(">h" + "ii" + "iq" * 9)
_TRADE_ROW = struct.Struct(">h" + "ii" + "iq" * 2 + "ii" + "iq" * 5)
# ... the last "i" is the length of client_order_id, whose bytes follow.
_ORDER_ROW = struct.Struct(">h" + "iq" * 2 + "ii" + "i?" + "iq" * 5 + "ii" + "iq" * 3 + "i")


def _text(word: str | None) -> bytes:
    if word is None:
        return _NULL
    data = word.encode()
    return struct.pack(">i", len(data)) + data


class _Encoded(dict):
    """The encoded text fields of a combination of enum numbers, made when first seen."""

    def __init__(self, encode) -> None:
        super().__init__()
        self.encode = encode

    def __missing__(self, key: tuple) -> bytes:
        value = self[key] = self.encode(*key)
        return value


def _reason_word(reason: int) -> str | None:
    """The word of a reject reason, None for none; KeyError for one the writer does not
    know (an engine newer than the writer): such a report is set aside, not stored
    without its reason."""
    return None if reason == pb.REJECT_REASON_NONE else REJECT_REASON_WORDS[reason]


# exec_type, order_status, reject_reason (and trade_id's NULL before them when not a
# trade); side, type, time_in_force; status, reject_reason. An unknown exec type, status
# or reason raises KeyError (the event is set aside); an unknown order term is the
# default, as the engine rejects such an order and the orders table takes no other.
_EXECUTION_TEXT = _Encoded(lambda exec_type, status, reason: b"".join((
    b"" if exec_type == pb.EXEC_TYPE_TRADE else _NULL, _text(EXEC_TYPE_WORDS[exec_type]),
    _text(ORDER_STATUS_WORDS[status]), _text(_reason_word(reason)))))
_ORDER_TERMS_TEXT = _Encoded(lambda side, type_, time_in_force: b"".join((
    _text(SIDE_WORDS.get(side, "buy")), _text(ORDER_TYPE_WORDS.get(type_, "limit")),
    _text(TIME_IN_FORCE_WORDS.get(time_in_force, "gtc")))))
_ORDER_STATE_TEXT = _Encoded(lambda status, reason: _text(ORDER_STATUS_WORDS[status])
                             + _text(_reason_word(reason)))
# A refused cancel or replace is an execution, and leaves its order as it is: the
# report states the order, and a forgotten one's state is not the order's (bit n:
# exec type n).
_STATELESS_EXEC_TYPES = (1 << pb.EXEC_TYPE_CANCEL_REJECTED) | (1 << pb.EXEC_TYPE_REPLACE_REJECTED)
_SIDE_TEXT = {number: _text(word) for number, word in SIDE_WORDS.items()}


class Rows:
    """The table rows of a run of report batches, and the sequences they cover.

    Executions and trades are encoded as they are read; of an order only its latest
    state is kept, and made a row once, when written. An order whose first report here is
    its NEW report is a new row (unless the run is read again); any other order's row,
    if Postgres has it, is updated. (Report objects are not kept: a live protobuf
    wrapper costs more than reading its fields.)
    """

    def __init__(self) -> None:
        # Encoded COPY rows, one after another: a bytearray grows in place, where a list
        # of rows cost an object per row, and a tuple and a join of them to send.
        self.executions = bytearray()
        self.trades = bytearray()
        # order id -> (sequence, updated_at, created_at, is new, partition, price,
        # quantity, status, reject reason, cum_qty, leaves_qty, cum_notional, (account_id,
        # instrument_id, post_only, client_order_id, side, type, time_in_force)): its
        # latest state, and what its reports do not change, read from its first one
        self._orders: dict[int, tuple] = {}
        self.covered: list[tuple[int, int, int]] = []  # (partition, first, last)
        self.heads: dict[int, int] = {}  # partition -> highest sequence it has assigned
        # (partition, sequence, marks): the shards' marks of a batch (FIELD_MARKS), true
        # once its partition is persisted through `sequence`, the batch's last
        self.marks: list[tuple[int, int, list[Mark]]] = []
        # What could not be stored: sent to the dead-letter stream once the rest is.
        self.set_aside: list[DeadLetter] = []

    @property
    def order_ids(self) -> list[int]:
        return list(self._orders)

    def order_rows(self) -> tuple[bytearray, list[tuple]]:
        """The encoded rows of the orders first reported here, one after another in
        order id order (so they append to the end of the indexes the order id leads:
        in the order reports come, from several shards, they split pages in the middle
        and left them two thirds full); the values of the others' (in _ORDER_COLUMNS
        order). In C when built (a third of the writer's Python was this loop)."""
        if reportwire is not None:
            new = bytearray()
            updated_ids = reportwire.order_rows(self._orders, new, _ORDER_TERMS_TEXT,
                                                _ORDER_STATE_TEXT)
            return new, [_order_values(order_id, self._orders[order_id])
                         for order_id in updated_ids]
        return self._order_rows()

    def _order_rows(self) -> tuple[bytearray, list[tuple]]:
        new, updated = bytearray(), []
        pack, terms, states = _ORDER_ROW.pack, _ORDER_TERMS_TEXT, _ORDER_STATE_TEXT
        fresh = []
        for order_id, order in self._orders.items():
            if order[3]:  # is new
                fresh.append((order_id, order))
            else:
                updated.append(_order_values(order_id, order))
        fresh.sort()
        for order_id, order in fresh:
            (sequence, updated_at, created_at, _, partition, price, quantity, status,
             reason, cum_qty, leaves_qty, cum_notional, (account_id, instrument_id, post_only,
             client_order_id, side, type_, time_in_force)) = order
            client_order_id = client_order_id.encode()
            new += pack(19, 8, order_id, 8, account_id, 4, instrument_id, 1, post_only,
                        8, price, 8, quantity, 8, cum_qty, 8, leaves_qty, 8, cum_notional,
                        4, partition, 8, sequence, 8, created_at, 8, updated_at,
                        len(client_order_id))
            new += client_order_id
            new += terms[side, type_, time_in_force]
            new += states[status, reason]
        return new, updated

    def order_values(self) -> list[tuple]:
        """The values of every order's row (in _ORDER_COLUMNS order)."""
        return [_order_values(order_id, order) for order_id, order in self._orders.items()]

    def add_serialized(self, data: bytes, marks: bytes | None = None, source: str = "",
                       entry: str = "") -> None:
        """add() of a serialized ReportBatch (and the shards' marks it answers), read from
        `source` (its entry id `entry`): read off the wire in C (venue._reportwire) when
        built, which is most of the writer's CPU saved. Raises ValueError, leaving this
        Rows to be made again without it, when the batch does not decode."""
        if reportwire is None:
            try:
                batch = pb.ReportBatch.FromString(data)
            except DecodeError as error:
                raise ValueError(f"malformed ReportBatch: {error}") from None
            self.add(batch, source, entry)
            partition, next_sequence = batch.partition, batch.next_sequence
        else:
            events_set_aside: list[tuple[int, bytes, str]] = []
            partition, next_sequence, first, last, events = reportwire.add_batch(
                data, self.executions, self.trades, self._orders, _EXECUTION_TEXT, _SIDE_TEXT,
                _PG_EPOCH_US, _EXEC_TYPE_NEW, _EXEC_TYPE_TRADE, _STATELESS_EXEC_TYPES,
                events_set_aside)
            if events:
                self.covered.append((partition, first, last))
            if next_sequence:
                self.heads[partition] = max(self.heads.get(partition, 0), next_sequence - 1)
            for sequence, event, error in events_set_aside:
                self.set_aside.append(DeadLetter(_PART, UNKNOWN_VALUE, error, event, source,
                                                 entry, partition, sequence))
        if marks and next_sequence:
            try:
                parsed = parse_marks(marks)
            except ValueError as error:  # the batch stands; its shards' marks move later
                self.set_aside.append(DeadLetter(_PART, MALFORMED_ENTRY, f"marks: {error!r}",
                                                 marks, source, entry, partition))
            else:
                self.marks.append((partition, next_sequence - 1, parsed))

    def add(self, batch: pb.ReportBatch, source: str = "", entry: str = "") -> None:
        partition = batch.partition
        events = batch.events
        if events:
            self.covered.append((partition, events[0].sequence, events[-1].sequence))
        if batch.next_sequence:
            self.heads[partition] = max(self.heads.get(partition, 0), batch.next_sequence - 1)
        stamp, at = None, 0
        for event in events:
            # A set order id is a report; WhichOneof costs as much as three field reads.
            report = event.report
            if report.order_id:
                kind = "report"
            else:
                kind = event.WhichOneof("body")
                if kind == "level":
                    continue  # market data: for subscribers, not for the database
            timestamp_ns = event.timestamp_ns
            if timestamp_ns != stamp:  # the events of one command share their time
                stamp = timestamp_ns
                at = stamp // 1000 - _PG_EPOCH_US  # exact to the microsecond Postgres keeps
            try:
                if kind == "report":
                    self._report(partition, event.sequence, at, report)
                elif kind == "trade":
                    t = event.trade
                    side = _SIDE_TEXT[t.aggressor_side]
                    trades = self.trades
                    trades += _TRADE_ROW.pack(
                        10, 4, partition, 8, t.trade_id, 8, event.sequence, 4, t.instrument_id,
                        8, t.price, 8, t.quantity, 8, t.buy_order_id, 8, t.sell_order_id, 8, at)
                    trades += side
            except (KeyError, ValueError, struct.error) as error:
                self.set_aside.append(DeadLetter(_PART, UNKNOWN_VALUE, repr(error),
                                                 event.SerializeToString(), source, entry,
                                                 partition, event.sequence))

    def _report(self, partition: int, sequence: int, at: int, r: pb.ExecutionReport) -> None:
        order_id, exec_type = r.order_id, r.exec_type
        status, reason = r.order_status, r.reject_reason
        cum_qty, leaves_qty, cum_notional = r.cum_qty, r.leaves_qty, r.cum_notional
        text = _EXECUTION_TEXT[exec_type, status, reason]  # first: it may refuse the report
        if exec_type == _EXEC_TYPE_TRADE:
            row = _TRADE_EXECUTION_ROW.pack(
                13, 4, partition, 8, sequence, 8, order_id, 8, r.last_qty, 8, r.last_px,
                8, cum_qty, 8, leaves_qty, 8, cum_notional, 8, at, 8, r.trade_id)
        else:
            row = _EXECUTION_ROW.pack(
                13, 4, partition, 8, sequence, 8, order_id, 8, r.last_qty, 8, r.last_px,
                8, cum_qty, 8, leaves_qty, 8, cum_notional, 8, at)
        executions = self.executions
        executions += row
        executions += text
        if not order_id or _STATELESS_EXEC_TYPES >> exec_type & 1:
            return
        known = self._orders.get(order_id)
        if known is None:
            self._orders[order_id] = (
                sequence, at, at, exec_type == _EXEC_TYPE_NEW, partition, r.price,
                r.quantity, status, reason, cum_qty, leaves_qty, cum_notional,
                (r.account_id, r.instrument_id, r.post_only, r.client_order_id, r.side,
                 r.type, r.time_in_force))
        elif known[0] < sequence:
            self._orders[order_id] = (
                sequence, at, known[2], known[3], partition, r.price, r.quantity, status,
                reason, cum_qty, leaves_qty, cum_notional, known[12])


def _order_values(order_id: int, order: tuple) -> tuple:
    (sequence, updated_at, created_at, _, partition, price, quantity, status, reason, cum_qty,
     leaves_qty, cum_notional, (account_id, instrument_id, post_only, client_order_id, side,
                                type_, time_in_force)) = order
    return (order_id, account_id, instrument_id, post_only, price, quantity, cum_qty,
            leaves_qty, cum_notional, partition, sequence,
            created_at, updated_at, client_order_id,
            SIDE_WORDS.get(side, "buy"), ORDER_TYPE_WORDS.get(type_, "limit"),
            TIME_IN_FORCE_WORDS.get(time_in_force, "gtc"), ORDER_STATUS_WORDS[status],
            _reason_word(reason))


async def _copy(connection: asyncpg.Connection, table: str, columns: tuple[str, ...],
                rows: bytearray) -> None:
    """COPY encoded rows, one after another, into `table`."""
    # One buffer, not an async iterator: asyncpg then sends it without a round of its
    # flow control per chunk, which cost more than the copy of the bytes. (A memoryview:
    # asyncpg would take plain bytes for a file name.)
    data = memoryview(b"".join((_COPY_HEADER, rows, _COPY_TRAILER)))
    await connection.copy_to_table(table, source=data, columns=columns, format="binary")


async def _upsert_orders(connection: asyncpg.Connection, values: list[tuple]) -> None:
    await connection.execute(_UPSERT_ORDERS, *(list(column) for column in zip(*values)))


async def write_rows(connection: asyncpg.Connection, rows: Rows,
                     through: dict[int, int] | None = None,
                     after: Awaitable | None = None) -> None:
    """Write the rows in one transaction, with how far each partition is now persisted
    without a gap (`through`). With `after` (the write of the run before, on another
    connection), the new rows go in while it commits; orders already known are updated,
    and this commits, only once it has.

    Executions, trades and new orders are COPYed straight into their tables. When one
    of them is there already (the run is read again after a crash between COMMIT and
    XACK, or a gap was filled late) nothing of the attempt is kept, and the executions
    and trades go through staging tables, from which only the missing ones are moved.
    An order's row is inserted, or moved to a later sequence, never to an earlier one.
    """
    new_orders, updated_orders = rows.order_rows()
    try:
        async with connection.transaction():
            if rows.executions:
                await _copy(connection, "executions", _EXECUTION_COLUMNS, rows.executions)
            if rows.trades:
                await _copy(connection, "trades", _TRADE_COLUMNS, rows.trades)
            if new_orders:
                await _copy(connection, "orders", _ORDER_COLUMNS, new_orders)
            if after is not None:
                # Not before: an order updated here may be one the run before inserts,
                # and the insert must not wait on this transaction while it waits here.
                await after
            if updated_orders:
                await _upsert_orders(connection, updated_orders)
            if through:
                await connection.executemany(_PROGRESS, list(through.items()))
        return
    except asyncpg.UniqueViolationError:
        pass
    if after is not None:
        await after
    async with connection.transaction():
        if rows.executions:
            await _copy(connection, "stage_executions", _EXECUTION_COLUMNS, rows.executions)
        if rows.trades:
            await _copy(connection, "stage_trades", _TRADE_COLUMNS, rows.trades)
        await connection.execute(_MOVE)
        if rows.order_ids:
            await _upsert_orders(connection, rows.order_values())
        if through:
            await connection.executemany(_PROGRESS, list(through.items()))


def runs_of(read: list, most_bytes: int) -> list[list]:
    """An XREADGROUP answer cut into runs of whole entries, in order, each of at most
    `most_bytes` of report batches (or one larger entry)."""
    runs: list[list] = []
    size = most_bytes
    for stream, entries in read:
        for entry in entries:
            grows = len(entry[1].get(_FIELD_BATCH, b""))
            if size + grows > most_bytes:
                runs.append([])
                size = 0
            run = runs[-1]
            if not run or run[-1][0] != stream:
                run.append((stream, []))
            run[-1][1].append(entry)
            size += grows
    return runs


async def decode_rows(read) -> Rows:
    """The rows of events-stream entries as XREADGROUP returns them.

    Without the cyclic garbage collector meanwhile: nothing here makes a cycle, yet every
    few hundred tuples it would walk the young objects, and the rows of a run are
    hundreds of thousands of them. The event loop gets a turn after each entry (a report
    batch, a millisecond or so of decoding): the write in flight then sends its next
    statement as soon as Postgres has answered the last, and both work at once.

    An entry that does not decode is set aside whole, and the rows are made again
    without it (it may have left part of itself in them); the sequences it held are
    then missing, and the engine's replay fills them."""
    undecodable: dict[bytes, DeadLetter] = {}
    while True:
        rows = Rows()
        collecting = gc.isenabled()
        try:
            for stream, entries in read:
                for entry_id, fields in entries:
                    if entry_id in undecodable:
                        continue
                    batch = fields.get(_FIELD_BATCH)
                    if batch is None:
                        undecodable[entry_id] = DeadLetter(
                            _PART, MALFORMED_ENTRY, f"no field {FIELD_BATCH!r}",
                            repr(fields).encode(), _text_of(stream), _text_of(entry_id))
                        continue
                    gc.disable()
                    try:
                        rows.add_serialized(batch, fields.get(_FIELD_MARKS), _text_of(stream),
                                            _text_of(entry_id))
                    except ValueError as error:
                        undecodable[entry_id] = DeadLetter(
                            _PART, UNDECODABLE, repr(error), batch, _text_of(stream),
                            _text_of(entry_id))
                        raise _MadeAgain from None
                    finally:
                        if collecting:
                            gc.enable()
                    await asyncio.sleep(0)
        except _MadeAgain:
            continue
        rows.set_aside[:0] = undecodable.values()
        return rows


class _MadeAgain(Exception):
    """decode_rows met an entry that does not decode: the rows are made again."""


def _text_of(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def persisted_through(connection: asyncpg.Connection) -> dict[int, int]:
    return {row["partition"]: row["persisted_through"] for row in
            await connection.fetch("SELECT partition, persisted_through FROM partition_progress")}


def _packed_by_hiredis(redis: Redis) -> Redis:
    """`redis`, packing its commands with hiredis in C, as redis-py's sync client does
    when hiredis is installed: its asyncio client packs each argument in Python, half a
    microsecond per order id the writer HDELs."""
    serializer = getattr(redis_connection, "HiredisRespSerializer", None)
    if serializer is None or not HIREDIS_AVAILABLE:
        return redis
    pack = serializer().pack
    pool = redis.connection_pool
    base = pool.connection_class
    pool.connection_class = type(f"HiredisPacking{base.__name__}", (base,),
                                 {"pack_command": lambda self, *args: pack(*args)})
    return redis


def _cannot_store(error: BaseException) -> bool:
    """Postgres refused the data itself (SQLSTATE class 22, data exception, or 23,
    integrity constraint): sending it again fails again. Anything else may heal."""
    return isinstance(error, asyncpg.PostgresError) and (error.sqlstate or "")[:2] in ("22", "23")


class Writer:
    def __init__(self, settings: Settings, venue: VenueConfig | None = None) -> None:
        self.settings = settings
        self.venue = venue or settings.venue()
        self.keys = Keys(self.venue.name)
        self.redis = _packed_by_hiredis(Redis.from_url(settings.redis_url))
        self.consumer = settings.instance or "writer"
        self.streams = [self.keys.events(p) for p in range(self.venue.partitions)]
        self.written_batches = 0
        self.replayed_batches = 0
        self.progress: dict[int, SequenceProgress] = {}
        self._checked_heads = 0.0
        self.marks = PersistedMarks(self.redis, self.keys, _RETAIN_MS)
        # Per partition: how far it is persisted in Postgres (committed), and the marks of
        # batches read (in order) whose partition is not yet persisted through them.
        self._committed: dict[int, int] = {}
        self._waiting_marks: dict[int, deque[tuple[int, list[Mark]]]] = {}
        # Postgres refused a run's data: the pending entries go one by one next time.
        self._one_by_one = False
        self._health_field = part_health.writer_field(self.consumer)
        self._reported_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        await migrate(self.settings.database_url)
        log.info("writer %s: %d events streams -> postgres", self.consumer, len(self.streams))
        try:
            await part_health.forget_old(self.redis, self.keys, part_health.WRITER)
        except RedisError:
            pass
        try:
            while not stop.is_set():
                connections: list[asyncpg.Connection] = []
                try:
                    for _ in range(_CONNECTIONS):
                        connections.append(await asyncpg.connect(self.settings.database_url))
                        await prepare(connections[-1])
                    self.resume_from(await persisted_through(connections[0]))
                    await self._drain(connections, stop)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                        asyncpg.InternalClientError, RedisError) as error:
                    # Nothing was acknowledged for what did not commit: it is read again.
                    # (InternalClientError: a connection left mid-operation when its
                    # server died; a new connection starts clean.)
                    if _cannot_store(error):
                        log.error("postgres refused a run (%r): its entries go one by one, "
                                  "and the one refused is set aside", error)
                        self._one_by_one = True
                    else:
                        log.warning("writer interrupted (%r); resuming", error)
                    await self._report_health(ok=False, detail=repr(error), force=True)
                    await asyncio.sleep(0.5)
                finally:
                    for connection in connections:
                        if not connection.is_closed():
                            connection.terminate()
        finally:
            await self.redis.aclose()

    async def _report_health(self, ok: bool = True, detail: str = "", force: bool = False
                             ) -> None:
        """Say how the writer is (part_health), at most every HEARTBEAT_S unless forced:
        running, and for how long persistence has not moved while events await it."""
        now = time.monotonic()
        if not force and now - self._reported_at < part_health.HEARTBEAT_S:
            return
        self._reported_at = now
        stalled = max((p.missing_for(now) for p in self.progress.values()), default=0.0)
        try:
            await part_health.report(self.redis, self.keys, self._health_field, ok, detail,
                                     stalledS=round(stalled, 1))
        except RedisError:
            pass  # Redis is away: the silence says it

    def resume_from(self, persisted: dict[int, int]) -> None:
        """Start over from how far Postgres holds each partition: what is not
        acknowledged is read again."""
        partitions = range(self.venue.partitions)
        self.progress = {p: SequenceProgress(persisted.get(p, 0)) for p in partitions}
        self._committed = {p: persisted.get(p, 0) for p in partitions}
        self._waiting_marks = {p: deque() for p in partitions}

    async def _drain(self, connections: list[asyncpg.Connection],
                     stop: asyncio.Event) -> None:
        await self._ensure_groups()
        # Entries read before a crash and never acknowledged come first.
        for stream in self.streams:
            while True:
                _, claimed, _ = await self.redis.xautoclaim(
                    stream, WRITERS_GROUP, self.consumer, min_idle_time=0, count=_READ_COUNT)
                if not claimed:
                    break
                pending = await self.redis.xreadgroup(
                    WRITERS_GROUP, self.consumer, {stream: "0"}, count=_READ_COUNT)
                if not pending or not pending[0][1]:
                    break
                if self._one_by_one:
                    await self._write_one_by_one(connections[0], pending)
                else:
                    rows = await decode_rows(pending)
                    await self._write(connections[0], pending, rows, self._advance(rows))
        self._one_by_one = False
        # Runs in flight, oldest first, each on its own connection: while one commits,
        # the next is decoded and sent, so the writer's CPU and Postgres's overlap.
        # Each commits after the one before it (write_rows' `after`), so `through` and
        # the acknowledgements move in order.
        in_flight: deque[tuple[asyncio.Task, asyncpg.Connection]] = deque()
        free = list(connections)
        started = 0.0  # when the last transaction began
        try:
            while not stop.is_set():
                await self._report_health()
                # Group commit: a transaction costs the writer and Postgres about a
                # millisecond whatever it holds, so under load they begin at most every
                # _INTERVAL_S, each with what arrived meanwhile. An idle writer writes a
                # lone report at once.
                wait = started + _INTERVAL_S - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                read = await self.redis.xreadgroup(
                    WRITERS_GROUP, self.consumer, {s: ">" for s in self.streams},
                    count=_READ_COUNT, block=_BLOCK_MS)
                while in_flight and in_flight[0][0].done():
                    free.append(await self._finished(in_flight))
                if read:
                    started = time.monotonic()
                for run in runs_of(read or [], _RUN_BYTES):
                    rows = await decode_rows(run)
                    if not free:
                        free.append(await self._finished(in_flight))
                    after = in_flight[-1][0] if in_flight else None
                    connection = free.pop()
                    in_flight.append((asyncio.create_task(self._write(
                        connection, run, rows, self._advance(rows), after)), connection))
                if time.monotonic() - self._checked_heads >= _HEAD_CHECK_S or not read:
                    while in_flight:  # a replay writes on a connection of its own
                        free.append(await self._finished(in_flight))
                    await self._fill_gaps(free[0])
            while in_flight:  # stopping: what is in flight is finished
                free.append(await self._finished(in_flight))
        finally:
            for task, _ in in_flight:
                task.cancel()
            await asyncio.gather(*(task for task, _ in in_flight), return_exceptions=True)

    async def _write_one_by_one(self, connection: asyncpg.Connection, read) -> None:
        """Write entries one transaction each; an entry Postgres refuses for its data is
        set aside whole, and its sequences count as persisted, so nothing waits on it."""
        for stream, entries in read:
            for entry in entries:
                one = [(stream, [entry])]
                rows = await decode_rows(one)
                through = self._advance(rows)
                try:
                    await self._write(connection, one, rows, through)
                except asyncpg.PostgresError as error:
                    if not _cannot_store(error):
                        raise
                    refused = Rows()
                    refused.covered, refused.heads, refused.marks = (
                        rows.covered, rows.heads, rows.marks)
                    entry_id, fields = entry
                    refused.set_aside = [*rows.set_aside, DeadLetter(
                        _PART, UNSTORABLE, repr(error), fields.get(_FIELD_BATCH, b""),
                        _text_of(stream), _text_of(entry_id))]
                    await self._write(connection, one, refused, through)

    @staticmethod
    async def _finished(in_flight: deque) -> asyncpg.Connection:
        """Wait for the oldest run in flight (raising what it raised); its connection."""
        task, connection = in_flight[0]
        await task
        in_flight.popleft()
        return connection

    def _advance(self, rows: Rows) -> dict[int, int]:
        """Record what `rows` covers; the partitions whose `through` moved."""
        before = {p: progress.through for p, progress in self.progress.items()}
        for partition, head in rows.heads.items():
            self._progress_of(partition).saw_head(head)
        for partition, first, last in rows.covered:
            self._progress_of(partition).add(first, last)
        for partition, sequence, marks in rows.marks:
            if partition in self._waiting_marks:
                self._waiting_marks[partition].append((sequence, marks))
        return {p: progress.through for p, progress in self.progress.items()
                if progress.through != before.get(p)}

    def _progress_of(self, partition: int) -> SequenceProgress:
        """A partition's progress; one the venue does not have (a corrupt batch naming
        it) is tracked apart and never moves the venue's own."""
        progress = self.progress.get(partition)
        return progress if progress is not None else SequenceProgress()

    async def _fill_gaps(self, connection: asyncpg.Connection) -> None:
        """Ask the engine again for sequences missing for longer than a submitter needs
        to publish them: what a submitter killed mid-batch never did."""
        now = time.monotonic()
        if now - self._checked_heads >= _HEAD_CHECK_S:
            self._checked_heads = now
            for partition in self.progress:
                head = await self._engine_head(partition)
                if head is not None:
                    self.progress[partition].saw_head(head)
        for partition, progress in self.progress.items():
            if progress.missing_for(now) < _GAP_GRACE_S:
                continue
            log.warning("partition %d: sequences %d..%d missing for %.1fs; replaying them "
                        "from the engine", partition, progress.through + 1, progress.head,
                        progress.missing_for(now))
            try:
                await self._replay(connection, partition, progress.through + 1, progress.head)
            except grpc.aio.AioRpcError as error:
                log.warning("replay from engine partition %d failed: %s", partition,
                            error.code())

    async def _replay(self, connection: asyncpg.Connection, partition: int, first: int,
                      last: int) -> None:
        """Sequences first..last of a partition from the engine's Replay, read as the
        bytes it sends, as the events stream's are (what cannot be stored is set aside)."""
        source = f"replay {first}..{last}"
        async with grpc.aio.insecure_channel(self.settings.engine_address(partition),
                                             options=GRPC_OPTIONS) as channel:
            replay = channel.unary_stream(_REPLAY, request_serializer=_serialize,
                                          response_deserializer=None)
            rows, batches, reached = Rows(), [], first - 1
            async for batch in replay(pb.ReplayRequest(from_sequence=first), timeout=30):
                self.replayed_batches += 1
                try:
                    rows.add_serialized(batch, entry=source)
                except ValueError as error:
                    # The engine's own answer does not decode, and nothing else holds
                    # these sequences: set aside, and counted as persisted, so the venue
                    # goes on. (The batches before it are read again: this one may have
                    # left part of itself in the rows.)
                    rows = Rows()
                    for good in batches:
                        rows.add_serialized(good, entry=source)
                    rows.covered.append((partition, reached + 1, last))
                    rows.set_aside.append(DeadLetter(
                        _PART, UNDECODABLE, f"replayed sequences {reached + 1}..{last}: "
                        f"{error!r}", batch, partition=partition))
                    break
                batches.append(batch)
                if not rows.covered or rows.covered[-1][2] <= reached:
                    break  # nothing more to come
                reached = rows.covered[-1][2]
                if reached >= last:
                    break
                if len(rows.executions) >= _RUN_BYTES:
                    await self._write_replayed(connection, rows)
                    rows, batches = Rows(), []
            await self._write_replayed(connection, rows)

    async def _write_replayed(self, connection: asyncpg.Connection, rows: Rows) -> None:
        through = self._advance(rows)
        await write_rows(connection, rows, through)
        # A gap filled: the marks of batches after it may hold now.
        async with self.redis.pipeline(transaction=False) as pipe:
            set_aside(pipe, self.keys, rows.set_aside)
            await self.marks.record(pipe, self._persisted_marks(through))
            await pipe.execute()

    def _persisted_marks(self, through: dict[int, int]) -> list[Mark]:
        """Note that Postgres now holds each partition through `through`; per shard, the
        latest mark that is now true."""
        for partition, sequence in through.items():
            self._committed[partition] = max(self._committed[partition], sequence)
        latest: dict[int, Mark] = {}
        # Every partition's: a batch of no events may be read after its partition is
        # persisted through it, and then nothing moves `through` for it.
        for partition, waiting in self._waiting_marks.items():
            committed = self._committed[partition]
            while waiting and waiting[0][0] <= committed:
                for mark in waiting.popleft()[1]:
                    if mark.shard not in latest or mark.entry > latest[mark.shard].entry:
                        latest[mark.shard] = mark
        return list(latest.values())

    async def _engine_head(self, partition: int) -> int | None:
        try:
            async with grpc.aio.insecure_channel(
                    self.settings.engine_address(partition)) as channel:
                health = await engine_pb2_grpc.MatchingEngineStub(channel).Health(
                    pb.HealthRequest(), timeout=2)
            return health.next_sequence - 1
        except grpc.aio.AioRpcError:
            return None  # the engine is away; the events stream is all there is

    async def _write(self, connection: asyncpg.Connection, read, rows: Rows,
                     through: dict[int, int], after: asyncio.Task | None = None) -> None:
        await write_rows(connection, rows, through, after)
        async with self.redis.pipeline(transaction=False) as pipe:
            # Before the acknowledgement: a crash between the two sets them aside again.
            set_aside(pipe, self.keys, rows.set_aside)
            # Persisted: their status is read from Postgres from now on.
            await self.marks.record(pipe, self._persisted_marks(through))
            for stream, entries in read:
                ids = [entry_id for entry_id, _ in entries]
                pipe.xack(stream, WRITERS_GROUP, *ids)
                ms = int(ids[-1].split(b"-")[0])
                pipe.xtrim(stream, minid=max(0, ms - _RETAIN_MS), approximate=True)
            await pipe.execute()
        self.written_batches += sum(len(entries) for _, entries in read)

    async def _ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, WRITERS_GROUP, id="0", mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise


_REPLAY = "/tradingvenue.engine.v1.MatchingEngine/Replay"


def _serialize(message) -> bytes:
    return message.SerializeToString()
