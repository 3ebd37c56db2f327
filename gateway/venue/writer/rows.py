"""A run of engine report batches made into table rows: the executions and trades as
COPY rows, each order's latest state, and each instrument's candle of each minute its
trades fall in, read off the wire in C (venue._reportwire).

What cannot be stored is set aside, not raised: an event with a value the writer does
not know, and an entry that does not decode (venue.contract.dead_letters).
"""

from __future__ import annotations

import asyncio
import gc
import struct

from venue import _reportwire as reportwire
from venue._reportwire import OrderState, OrderTerms
from venue.contract.dead_letters import MALFORMED_ENTRY, UNDECODABLE, UNKNOWN_VALUE, DeadLetter
from venue.contract.entries import FIELD_BATCH, FIELD_MARKS, Mark, parse_marks
from venue.contract.wire import (CLOSED_STATUSES, ORDER_STATUS_WORDS, ORDER_TYPE_WORDS,
                                 SIDE_WORDS, TIME_IN_FORCE_WORDS)
from venue.enginepb import engine_pb2 as pb
from venue.writer.copy_format import (EXECUTION_ROW, EXECUTION_TEXT, ORDER_ROW,
                                      ORDER_STATE_TEXT, ORDER_TERMS_TEXT, PG_EPOCH_US,
                                      SIDE_TEXT, TRADE_EXECUTION_ROW, TRADE_ROW, reason_word)

PART = "writer"
_FIELD_BATCH = FIELD_BATCH.encode()
_FIELD_MARKS = FIELD_MARKS.encode()
_EXEC_TYPE_NEW, _EXEC_TYPE_TRADE = pb.EXEC_TYPE_NEW, pb.EXEC_TYPE_TRADE
# A refused cancel or replace is an execution, and leaves its order as it is: the
# report states the order, and a forgotten one's state is not the order's (bit n:
# exec type n).
STATELESS_EXEC_TYPES = (1 << pb.EXEC_TYPE_CANCEL_REJECTED) | (1 << pb.EXEC_TYPE_REPLACE_REJECTED)
# A candle as venue._reportwire keeps it (its Candle, native byte order): open, high, low,
# close (ticks), volume (lots), trades, then the time (Postgres microseconds) and sequence
# of the trades that opened and closed it.
CANDLE = struct.Struct("=10q")
MINUTE_US = 60_000_000
_INT64 = range(-1 << 63, 1 << 63)
_CLOSED = frozenset(n for n, word in ORDER_STATUS_WORDS.items() if word in CLOSED_STATUSES)

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
        # order id -> its latest state (OrderState), and in it what its reports do not
        # change, read from its first one (OrderTerms)
        self._orders: dict[int, OrderState] = {}
        self.covered: list[tuple[int, int, int]] = []  # (partition, first, last)
        self.heads: dict[int, int] = {}  # partition -> highest sequence it has assigned
        # (instrument id, minute in Postgres microseconds) -> its candle (CANDLE), of
        # the run's trades
        self._candles: dict[tuple[int, int], bytearray] = {}
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
        and left them two thirds full); the values of the others' (in ORDER_COLUMNS
        order). In C (a third of the writer's Python was this loop)."""
        new = bytearray()
        updated_ids = reportwire.order_rows(self._orders, new, ORDER_TERMS_TEXT,
                                            ORDER_STATE_TEXT)
        return new, [_order_values(order_id, self._orders[order_id])
                     for order_id in updated_ids]

    def order_rows_reference(self) -> tuple[bytearray, list[tuple]]:
        """order_rows in Python: the tests' reference for the C."""
        new, updated = bytearray(), []
        pack, terms_text, states = ORDER_ROW.pack, ORDER_TERMS_TEXT, ORDER_STATE_TEXT
        fresh = []
        for order_id, order in self._orders.items():
            if order.is_new:
                fresh.append((order_id, order))
            else:
                updated.append(_order_values(order_id, order))
        fresh.sort()
        for order_id, order in fresh:
            terms = order.terms
            client_order_id = terms.client_order_id.encode()
            new += pack(19, 8, order_id, 8, terms.account_id, 4, terms.instrument_id, 1,
                        terms.post_only, 8, order.price, 8, order.quantity, 8, order.cum_qty,
                        8, order.leaves_qty, 8, order.cum_notional, 4, order.partition,
                        8, order.sequence, 8, order.created_at, 8, order.updated_at,
                        len(client_order_id))
            new += client_order_id
            new += terms_text[terms.side, terms.type, terms.time_in_force]
            new += states[order.status, order.reason]
        return new, updated

    def closed_orders(self) -> dict[int, list[int]]:
        """Per account, the orders of the run whose latest report closed them: once
        persisted, they leave the account's set of open orders (Keys.open_orders)."""
        closed: dict[int, list[int]] = {}
        for order_id, order in self._orders.items():
            if order.status in _CLOSED:
                closed.setdefault(order.terms.account_id, []).append(order_id)
        return closed

    def candle_values(self) -> list[tuple]:
        """The run's candles as values, in the order of venue.writer.store.CANDLE_COLUMNS,
        by instrument and minute."""
        return [(instrument_id, minute, *CANDLE.unpack(record))
                for (instrument_id, minute), record in sorted(self._candles.items())]

    def order_values(self) -> list[tuple]:
        """The values of every order's row (in ORDER_COLUMNS order)."""
        return [_order_values(order_id, order) for order_id, order in self._orders.items()]

    def add_serialized(self, data: bytes, marks: bytes | None = None, source: str = "",
                       entry: str = "") -> None:
        """add() of a serialized ReportBatch (and the shards' marks it answers), read from
        `source` (its entry id `entry`): read off the wire in C (venue._reportwire), which
        is most of the writer's CPU saved. Raises ValueError, leaving this Rows to be made
        again without it, when the batch does not decode."""
        events_set_aside: list[tuple[int, bytes, str]] = []
        partition, next_sequence, first, last, events = reportwire.add_batch(
            data, self.executions, self.trades, self._orders, self._candles, EXECUTION_TEXT,
            SIDE_TEXT, PG_EPOCH_US, _EXEC_TYPE_NEW, _EXEC_TYPE_TRADE, STATELESS_EXEC_TYPES,
            events_set_aside)
        if events:
            self.covered.append((partition, first, last))
        if next_sequence:
            self.heads[partition] = max(self.heads.get(partition, 0), next_sequence - 1)
        for sequence, event, error in events_set_aside:
            self.set_aside.append(DeadLetter(PART, UNKNOWN_VALUE, error, event, source,
                                             entry, partition, sequence))
        if marks and next_sequence:
            try:
                parsed = parse_marks(marks)
            except ValueError as error:  # the batch stands; its shards' marks move later
                self.set_aside.append(DeadLetter(PART, MALFORMED_ENTRY, f"marks: {error!r}",
                                                 marks, source, entry, partition))
            else:
                self.marks.append((partition, next_sequence - 1, parsed))

    def add(self, batch: pb.ReportBatch, source: str = "", entry: str = "") -> None:
        """add_serialized of a decoded batch, in Python: the tests' reference for the C."""
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
                at = stamp // 1000 - PG_EPOCH_US  # exact to the microsecond Postgres keeps
            try:
                if kind == "report":
                    self._report(partition, event.sequence, at, report)
                elif kind == "trade":
                    t = event.trade
                    side = SIDE_TEXT[t.aggressor_side]
                    self._candle(event.sequence, at, t)  # first: it may refuse the trade
                    trades = self.trades
                    trades += TRADE_ROW.pack(
                        10, 4, partition, 8, t.trade_id, 8, event.sequence, 4, t.instrument_id,
                        8, t.price, 8, t.quantity, 8, t.buy_order_id, 8, t.sell_order_id, 8, at)
                    trades += side
            except (KeyError, ValueError, struct.error) as error:
                self.set_aside.append(DeadLetter(PART, UNKNOWN_VALUE, repr(error),
                                                 event.SerializeToString(), source, entry,
                                                 partition, event.sequence))

    def _candle(self, sequence: int, at: int, t: pb.Trade) -> None:
        """A trade into its instrument's candle of its minute: open and close are the
        prices of the first and last trades by (time, sequence). A volume past int64
        raises ValueError, and the candle stays as it was."""
        key = (t.instrument_id, at // MINUTE_US * MINUTE_US)
        price = t.price
        record = self._candles.get(key)
        if record is None:
            self._candles[key] = bytearray(CANDLE.pack(
                price, price, price, price, t.quantity, 1, at, sequence, at, sequence))
            return
        (open_, high, low, close, volume, trades, open_at, open_sequence, close_at,
         close_sequence) = CANDLE.unpack(record)
        volume += t.quantity
        if volume not in _INT64:
            raise ValueError(f"the volume of instrument {t.instrument_id}'s minute is out "
                             "of range")
        if (at, sequence) < (open_at, open_sequence):
            open_, open_at, open_sequence = price, at, sequence
        if (at, sequence) > (close_at, close_sequence):
            close, close_at, close_sequence = price, at, sequence
        CANDLE.pack_into(record, 0, open_, max(high, price), min(low, price), close, volume,
                         trades + 1, open_at, open_sequence, close_at, close_sequence)

    def _report(self, partition: int, sequence: int, at: int, r: pb.ExecutionReport) -> None:
        order_id, exec_type = r.order_id, r.exec_type
        status, reason = r.order_status, r.reject_reason
        cum_qty, leaves_qty, cum_notional = r.cum_qty, r.leaves_qty, r.cum_notional
        text = EXECUTION_TEXT[exec_type, status, reason]  # first: it may refuse the report
        if exec_type == _EXEC_TYPE_TRADE:
            row = TRADE_EXECUTION_ROW.pack(
                13, 4, partition, 8, sequence, 8, order_id, 8, r.last_qty, 8, r.last_px,
                8, cum_qty, 8, leaves_qty, 8, cum_notional, 8, at, 8, r.trade_id)
        else:
            row = EXECUTION_ROW.pack(
                13, 4, partition, 8, sequence, 8, order_id, 8, r.last_qty, 8, r.last_px,
                8, cum_qty, 8, leaves_qty, 8, cum_notional, 8, at)
        executions = self.executions
        executions += row
        executions += text
        if not order_id or STATELESS_EXEC_TYPES >> exec_type & 1:
            return
        known = self._orders.get(order_id)
        if known is None:
            self._orders[order_id] = OrderState((
                sequence, at, at, exec_type == _EXEC_TYPE_NEW, partition, r.price,
                r.quantity, status, reason, cum_qty, leaves_qty, cum_notional,
                OrderTerms((r.account_id, r.instrument_id, r.post_only, r.client_order_id,
                            r.side, r.type, r.time_in_force))))
        elif known.sequence < sequence:
            self._orders[order_id] = OrderState((
                sequence, at, known.created_at, known.is_new, partition, r.price, r.quantity,
                status, reason, cum_qty, leaves_qty, cum_notional, known.terms))


def _order_values(order_id: int, order: OrderState) -> tuple:
    """An order's row as values, in ORDER_COLUMNS order."""
    terms = order.terms
    return (order_id, terms.account_id, terms.instrument_id, terms.post_only, order.price,
            order.quantity, order.cum_qty, order.leaves_qty, order.cum_notional,
            order.partition, order.sequence, order.created_at, order.updated_at,
            terms.client_order_id, SIDE_WORDS.get(terms.side, "buy"),
            ORDER_TYPE_WORDS.get(terms.type, "limit"),
            TIME_IN_FORCE_WORDS.get(terms.time_in_force, "gtc"),
            ORDER_STATUS_WORDS[order.status], reason_word(order.reason))


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
                            PART, MALFORMED_ENTRY, f"no field {FIELD_BATCH!r}",
                            repr(fields).encode(), text_of(stream), text_of(entry_id))
                        continue
                    gc.disable()
                    try:
                        rows.add_serialized(batch, fields.get(_FIELD_MARKS), text_of(stream),
                                            text_of(entry_id))
                    except ValueError as error:
                        undecodable[entry_id] = DeadLetter(
                            PART, UNDECODABLE, repr(error), batch, text_of(stream),
                            text_of(entry_id))
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


def text_of(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
