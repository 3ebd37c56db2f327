"""The market-data feed of one gateway process: books and trades kept from the engine's
events, fanned out to the subscribers of /v1/market.

Each partition starts from the engine's book of each of its instruments (GetBook, full
depth, with the partition sequence it was taken at); from then on the process applies
every level and trade event after that sequence, in order, as it reads them from the
partition's market stream (the submitters publish each engine batch there without its
execution reports: venue.contract.entries). A partition's events are passed on once
each: one already seen (a submitter published it again) is skipped; a gap (entries
never published, or trimmed before this process read them) is filled from the engine's
Replay, and when it cannot be, the partition starts over from fresh books and every
subscriber of its symbols gets a new snapshot.

Subscribers of the same kind (symbol, depth and conflation interval; or a symbol's
trades) share a view: what they were last sent, the sequence of it, and the last
RETAINED messages, encoded once and handed to every member. So a subscription's chain of
seq / prevSeq is the view's, a new member starts from a snapshot of the view, and a
member that missed messages gets them again from the view's memory, or a snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from contextlib import aclosing
from typing import Any, Protocol

import grpc
import msgspec
from redis.asyncio import Redis

from venue._reportwire import market_events
from venue.api.engines import EngineChannels, EngineUnavailable
from venue.api.report_feed import ReportFeed, follow_streams, stream_ends
from venue.api.reports import engine_time
from venue.contract.config import VenueConfig
from venue.contract.entries import FIELD_BATCH, FIELD_FIRST, FIELD_LAST
from venue.contract.instruments import Instrument
from venue.contract.keys import Keys
from venue.contract.wire import SIDE_WORDS
from venue.enginepb import engine_pb2 as pb
from venue.market.book import BUY, CHECKSUM_DEPTH, SELL, Book, checksum
from venue.market.frames import text_frame
from venue.metrics import MARKET_MESSAGES

log = logging.getLogger(__name__)

RETAINED = 1024  # messages each view keeps for members that missed some
RECENT_TRADES = 100  # trades a trades snapshot carries
GET_BOOK_TIMEOUT_S = 5.0
REMOVED = "0"  # the quantity of a level that is gone
_BATCH, _FIRST, _LAST = FIELD_BATCH.encode(), FIELD_FIRST.encode(), FIELD_LAST.encode()
_encode = msgspec.json.Encoder().encode

# A level change or a trade as venue._reportwire.market_events reads it off a batch:
# (sequence, timestamp_ns, instrument_id, side, price, quantity, trade_id); a level
# change's trade_id is None, a trade's side its aggressor's.
MarketEvent = tuple[int, int, int, int, int, int, int | None]


class Member(Protocol):
    """A subscriber: takes encoded messages (and their WebSocket frame), in order,
    without waiting."""

    def push(self, text: str, frame: bytes | None = None) -> None: ...


def replayed(text: str) -> str:
    """A retained message sent again, marked so."""
    return text[:-1] + ',"replay":true}'


class View:
    """What the members of one subscription kind share."""

    channel = ""

    def __init__(self, symbol: "SymbolBook") -> None:
        self.symbol = symbol
        self.members: set[Member] = set()
        self.seq = 0  # the seq of the last message (or snapshot) of this view
        self.retained: deque[tuple[int, int, str]] = deque(maxlen=RETAINED)  # prev, seq, text
        self.last_sent = time.monotonic()

    def broadcast(self, prev_seq: int, seq: int, message: dict[str, Any]) -> None:
        payload = _encode(message)
        text = payload.decode()
        self.retained.append((prev_seq, seq, text))
        self.seq = seq
        self.last_sent = time.monotonic()
        frame = text_frame(payload)
        for member in tuple(self.members):
            member.push(text, frame)
        MARKET_MESSAGES.labels(self.channel).inc(len(self.members))

    def missed_since(self, seq: int) -> list[str] | None:
        """The retained messages after the one with `seq`, marked as replays; [] when
        `seq` is the view's own; None when they are no longer all retained."""
        if seq == self.seq:
            return []
        for index, (prev_seq, _, _) in enumerate(self.retained):
            if prev_seq == seq:
                return [replayed(text) for _, _, text in list(self.retained)[index:]]
        return None

    def heartbeat(self) -> str:
        return _encode({"type": "heartbeat", "channel": self.channel,
                        "symbol": self.symbol.instrument.symbol, "seq": self.seq}).decode()

    def snapshot(self) -> str:
        raise NotImplementedError

    def reset(self) -> None:
        """The partition started over: begin again from the book as it now is."""
        raise NotImplementedError


class BookView(View):
    channel = "book"

    def __init__(self, symbol: "SymbolBook", depth: int, interval_ms: int) -> None:
        super().__init__(symbol)
        self.depth = depth
        self.interval_ms = interval_ms
        self.changed: set[tuple[int, int]] = set()  # (side, price) since the last send
        self.dirty = False
        self.timer: asyncio.Task | None = None
        self.reset()

    def reset(self) -> None:
        book = self.symbol.book
        self.bids = {p: book.bids.quantity[p] for p in book.bids.best(self.depth)}
        self.asks = {p: book.asks.quantity[p] for p in book.asks.best(self.depth)}
        self.seq = self.symbol.seq
        self.retained.clear()
        self.changed.clear()
        self.dirty = False

    def on_change(self, touched: set[tuple[int, int]]) -> None:
        if not self.depth:
            self.changed |= touched
        self.dirty = True
        if not self.interval_ms:
            self.send()

    def send(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        book = self.symbol.book
        if self.depth:
            bid_changes = _diff(self.bids, book.bids.best(self.depth), book.bids.quantity)
            ask_changes = _diff(self.asks, book.asks.best(self.depth), book.asks.quantity)
        else:
            bid_changes, ask_changes = [], []
            for side, price in self.changed:
                levels, shown = ((book.bids, self.bids) if side == BUY
                                 else (book.asks, self.asks))
                quantity = levels.quantity.get(price, 0)
                if shown.get(price, 0) != quantity:
                    (bid_changes if side == BUY else ask_changes).append((price, quantity))
                    if quantity:
                        shown[price] = quantity
                    else:
                        shown.pop(price, None)
            self.changed.clear()
        if not bid_changes and not ask_changes:
            return
        seq = self.symbol.seq
        self.broadcast(self.seq, seq, {
            "type": "update", "channel": "book", "symbol": self.symbol.instrument.symbol,
            "seq": seq, "prevSeq": self.seq, "time": engine_time(self.symbol.time_ns),
            "bids": self._texts(bid_changes),
            "asks": self._texts(ask_changes), "checksum": book.checksum(self.depth)})

    def _texts(self, changes: list[tuple[int, int]]) -> list[tuple[str, str]]:
        book = self.symbol.book
        return [(book.text(p), book.quantity_text(q) if q else REMOVED) for p, q in changes]

    def _top(self, shown: dict[int, int], descending: bool, depth: int) -> list[tuple[str, str]]:
        prices = sorted(shown, reverse=descending)
        if depth:
            prices = prices[:depth]
        book = self.symbol.book
        return [(book.text(p), book.quantity_text(shown[p])) for p in prices]

    def checksum(self) -> int:
        return checksum(self._top(self.bids, True, CHECKSUM_DEPTH),
                        self._top(self.asks, False, CHECKSUM_DEPTH))

    def snapshot(self) -> str:
        return _encode({
            "type": "snapshot", "channel": "book", "symbol": self.symbol.instrument.symbol,
            "seq": self.seq, "depth": self.depth, "interval": self.interval_ms,
            "bids": self._top(self.bids, True, 0), "asks": self._top(self.asks, False, 0),
            "checksum": self.checksum()}).decode()

    async def tick(self) -> None:
        """Sends the conflated changes every interval."""
        period = self.interval_ms / 1000
        while True:
            await asyncio.sleep(period)
            self.send()


def _diff(shown: dict[int, int], best: list[int], quantity: dict[int, int]
          ) -> list[tuple[int, int]]:
    """The changes that make `shown` the levels at `best` (updating it): new or changed
    levels with their quantity, levels no longer shown with 0."""
    changes = []
    for price in best:
        q = quantity[price]
        if shown.get(price) != q:
            changes.append((price, q))
    if len(shown) != len(best) or changes:
        keep = set(best)
        changes += [(price, 0) for price in shown if price not in keep]
    if changes:
        shown.clear()
        shown.update((price, quantity[price]) for price in best)
    return changes


class TradeView(View):
    channel = "trades"

    def __init__(self, symbol: "SymbolBook") -> None:
        super().__init__(symbol)
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_TRADES)
        self.reset()

    def reset(self) -> None:
        self.seq = self.symbol.seq
        self.retained.clear()

    def send(self, trades: list[MarketEvent]) -> None:
        instrument = self.symbol.instrument
        book = self.symbol.book
        items = [{"tradeId": str(trade_id), "price": book.text(price),
                  "quantity": instrument.quantity_text(quantity),
                  "aggressorSide": SIDE_WORDS.get(side, "unknown"),
                  "time": engine_time(ns), "sequence": seq}
                 for seq, ns, _, side, price, quantity, trade_id in trades]
        self.recent.extend(items)
        seq = trades[-1][0]
        self.broadcast(self.seq, seq, {
            "type": "trades", "channel": "trades", "symbol": instrument.symbol,
            "seq": seq, "prevSeq": self.seq, "trades": items})

    def snapshot(self) -> str:
        return _encode({"type": "snapshot", "channel": "trades",
                        "symbol": self.symbol.instrument.symbol, "seq": self.seq,
                        "trades": list(self.recent)}).decode()


class SymbolBook:
    """One instrument's book in this process, as of partition sequence `seq`."""

    def __init__(self, instrument: Instrument, snapshot: pb.BookSnapshot) -> None:
        self.instrument = instrument
        self.book = Book(instrument.price_text, instrument.quantity_text)
        for side, levels in ((BUY, snapshot.bids), (SELL, snapshot.asks)):
            prices = self.book.side(side)
            for level in levels:
                prices.set(level.price, level.quantity)
        self.through = snapshot.sequence  # events up to here are in the snapshot
        self.seq = snapshot.sequence  # the last event that changed the book (or through)
        self.time_ns = 0  # the engine's time of that event
        self.touched: set[tuple[int, int]] = set()
        self.trades: list[MarketEvent] = []
        self.views: dict[tuple[int, int], BookView] = {}
        self.trade_view: TradeView | None = None

    def replace(self, fresh: SymbolBook) -> None:
        """Start over from `fresh`, keeping the views (which then snapshot again)."""
        self.book, self.through, self.seq = fresh.book, fresh.through, fresh.seq
        self.touched.clear()
        self.trades.clear()

    def publish(self) -> None:
        if self.touched:
            for view in tuple(self.views.values()):
                view.on_change(self.touched)
            self.touched.clear()
        if self.trades:
            if self.trade_view is not None:
                self.trade_view.send(self.trades)
            self.trades = []


class Partition:
    def __init__(self) -> None:
        self.books: dict[int, SymbolBook] = {}  # by instrument id
        self.next = 0  # the next sequence to apply
        self.ready = asyncio.Event()
        self.starting: asyncio.Task | None = None
        self.attempted = 0.0  # when the last start began (monotonic)

    def start(self, feed: MarketFeed, index: int) -> asyncio.Task:
        self.attempted = time.monotonic()
        self.starting = asyncio.create_task(feed._start(index, self),
                                            name=f"venue-market-start-{index}")
        self.starting.add_done_callback(_said)
        return self.starting

    def stuck(self) -> bool:
        """Not ready, and no start under way for a second: time to try again."""
        return (not self.ready.is_set()
                and (self.starting is None or self.starting.done())
                and time.monotonic() - self.attempted > 1.0)


def _said(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("market feed: %s (tried again on the next events or subscriber)",
                    task.exception())


def _reader_ended(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("market feed: reading the market streams failed (%r); read again from "
                  "fresh books on the next subscriber or start", task.exception())


class MarketFeed:
    """The books and trades of every partition this process serves subscribers of."""

    def __init__(self, redis: Redis, venue: VenueConfig, engines: EngineChannels,
                 reports: ReportFeed) -> None:
        self.redis = redis
        self.venue = venue
        self.engines = engines
        self.reports = reports  # the engine's Replay, for gaps
        self._streams = {Keys(venue.name).market(p): p for p in range(venue.partitions)}
        self._partitions: dict[int, Partition] = {}
        self._reader: asyncio.Task | None = None
        self._stop = asyncio.Event()

    # --- subscriptions -------------------------------------------------------------

    async def book_view(self, instrument: Instrument, depth: int, interval_ms: int) -> BookView:
        symbol = await self._symbol(instrument)
        view = symbol.views.get((depth, interval_ms))
        if view is None:
            view = symbol.views[(depth, interval_ms)] = BookView(symbol, depth, interval_ms)
            if interval_ms:
                view.timer = asyncio.create_task(view.tick(), name="venue-market-conflation")
        return view

    async def trade_view(self, instrument: Instrument) -> TradeView:
        symbol = await self._symbol(instrument)
        if symbol.trade_view is None:
            symbol.trade_view = TradeView(symbol)
        return symbol.trade_view

    def leave(self, view: View, member: Member) -> None:
        view.members.discard(member)
        if view.members:
            return
        symbol = view.symbol
        if isinstance(view, BookView):
            if symbol.views.get((view.depth, view.interval_ms)) is view:
                del symbol.views[(view.depth, view.interval_ms)]
            if view.timer is not None:
                view.timer.cancel()
        elif symbol.trade_view is view:
            symbol.trade_view = None
        self.release_if_idle()

    def release_if_idle(self) -> None:
        """Nobody subscribes: no process keeps books (and reads every event) for nothing."""
        if not any(s.views or s.trade_view for p in self._partitions.values()
                   for s in p.books.values()):
            self._stop_reading()

    def _stop_reading(self) -> None:
        if self._reader is not None:
            self._stop.set()  # (follow_streams says why the flag as well)
            self._reader.cancel()
            self._reader = None
        for partition in self._partitions.values():
            if partition.starting is not None:
                partition.starting.cancel()
        self._partitions.clear()

    async def close(self) -> None:
        for partition in self._partitions.values():
            for symbol in partition.books.values():
                for view in symbol.views.values():
                    if view.timer is not None:
                        view.timer.cancel()
        reader = self._reader
        self._stop_reading()
        if reader is not None:
            await asyncio.gather(reader, return_exceptions=True)

    async def _symbol(self, instrument: Instrument) -> SymbolBook:
        """The instrument's book, its partition started if it was not. The caller must
        not await between this and joining a view: the book is current only now."""
        index = self.venue.partition_of_shard(self.venue.shard_of(instrument))
        for _ in range(3):
            partition = self._partitions.get(index)
            if partition is None:
                partition = self._partitions[index] = Partition()
            if not partition.ready.is_set() and (partition.starting is None
                                                 or partition.starting.done()):
                partition.start(self, index)
            starting = partition.starting
            if not partition.ready.is_set() and starting is not None:
                try:
                    await asyncio.wait_for(asyncio.shield(starting), GET_BOOK_TIMEOUT_S * 2)
                except asyncio.CancelledError:
                    if asyncio.current_task().cancelling():
                        raise  # this subscriber is going away
                    continue  # the start was called off (the last subscriber left): again
            # The feed may have been released while this waited: only a partition still
            # kept is fed events.
            if self._partitions.get(index) is partition and partition.ready.is_set():
                return partition.books[instrument.id]
        raise EngineUnavailable(index, "the market feed kept starting over; try again")

    # --- the events ------------------------------------------------------------------

    async def _start(self, index: int, partition: Partition) -> None:
        """The partition's books from the engine; events after them from then on. Raises
        EngineUnavailable when the engine does not answer."""
        partition.ready.clear()
        if self._reader is None or self._reader.done():
            # Read first: every entry published from now holds events the engine
            # applied after this moment, so after the books about to be taken.
            positions = await stream_ends(self.redis, self._streams)
            if self._reader is None or self._reader.done():  # (no other start meanwhile)
                self._stop = asyncio.Event()
                self._reader = asyncio.create_task(
                    follow_streams(self.redis, self._streams, positions, self._stop,
                                   self._on_read), name="venue-market-streams")
                self._reader.add_done_callback(_reader_ended)
        fresh = {}
        stub = self.engines.stub(index)
        for instrument in self.venue.instruments_of_partition(index):
            try:
                snapshot = await stub.GetBook(pb.BookRequest(instrument_id=instrument.id,
                                                             depth=0),
                                              timeout=GET_BOOK_TIMEOUT_S)
            except grpc.aio.AioRpcError as error:
                raise EngineUnavailable(index, f"GetBook: {error.code().name}") from None
            fresh[instrument.id] = SymbolBook(instrument, snapshot)
        if partition.books:  # starting over: keep the views, which snapshot their members
            for instrument_id, book in fresh.items():
                symbol = partition.books[instrument_id]
                symbol.replace(book)
                for view in (*symbol.views.values(), symbol.trade_view):
                    if view is not None:
                        view.reset()
                        text = view.snapshot()
                        for member in tuple(view.members):
                            member.push(text)
        else:
            partition.books = fresh
        partition.next = min(b.through for b in fresh.values()) + 1 if fresh else 1
        partition.ready.set()

    async def _on_read(self, index: int, stream: bytes,
                       entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        await self.on_entries(index, [fields for _, fields in entries])

    async def on_entries(self, index: int, entries: list[dict[bytes, bytes]]) -> None:
        """The entries of one read of partition `index`'s market stream, by field. Their
        changes go out together, once all are applied: a feed that falls behind (reads
        several at once) sends fewer, larger updates rather than a message per entry.
        Whatever goes wrong here starts the partition over; it never stops the reading."""
        touched: set[SymbolBook] = set()
        try:
            for fields in entries:
                await self._on_entry(index, fields, touched)
            for symbol in touched:
                symbol.publish()
        except Exception:  # noqa: BLE001 - set aside loudly, never stop the feed
            log.exception("market feed: partition %d failed on a market entry; starting "
                          "over from fresh books", index)
            partition = self._partitions.get(index)
            if partition is not None:
                partition.ready.clear()
                if partition.starting is None or partition.starting.done():
                    partition.start(self, index)  # (one start at a time)

    async def _on_entry(self, index: int, fields: dict[bytes, bytes],
                        touched: set[SymbolBook]) -> None:
        partition = self._partitions.get(index)
        if partition is None:
            return
        # A malformed entry (KeyError, ValueError) starts the partition over (on_entries).
        first, last = int(fields[_FIRST]), int(fields[_LAST])
        _, _, events = market_events(fields[_BATCH])
        if not first:
            return
        if not partition.ready.is_set():
            if partition.stuck():  # the engine did not answer the last start: again
                partition.start(self, index)
            return
        if first > partition.next:
            try:
                async with aclosing(self.reports.replay(index, partition.next)) as batches:
                    async for replayed_batch in batches:
                        _, replayed_last, replayed = market_events(
                            replayed_batch.SerializeToString())
                        if not self._apply(partition, replayed_last, replayed, touched,
                                           end=first):
                            break
                if partition.next < first:
                    raise EngineUnavailable(index, f"Replay ended at {partition.next - 1}, "
                                                   f"before {first}")
            except EngineUnavailable as error:
                log.warning("market feed: gap %d..%d of partition %d not filled (%s); "
                            "starting over from fresh books", partition.next, first - 1,
                            index, error)
                partition.ready.clear()
                partition.start(self, index)
                return
        self._apply(partition, last, events, touched)

    def _apply(self, partition: Partition, last: int, events: list[MarketEvent],
               touched: set[SymbolBook], end: int | None = None) -> bool:
        """Applies the level changes and trades of a batch whose last event is `last`,
        from partition.next (up to `end`), adding the books it changes to `touched`.
        False once `end` is reached."""
        books = partition.books
        going = True
        if end is not None and last >= end:
            last, going = end - 1, False
        start = partition.next
        for event in events:
            sequence, ns, instrument_id, side, price, quantity, trade_id = event
            if sequence < start:
                continue
            if sequence > last:
                break
            symbol = books.get(instrument_id)
            if symbol is None or sequence <= symbol.through:
                continue
            if trade_id is None:
                symbol.book.side(side).set(price, quantity)
                symbol.seq = sequence
                symbol.time_ns = ns
                symbol.touched.add((side, price))
            else:
                symbol.trades.append(event)
            touched.add(symbol)
        partition.next = max(partition.next, last + 1)
        return going
