"""The market-data feed of one gateway process: books and trades kept from the engine's
events, fanned out to the subscribers of /v1/market.

Each partition starts from the engine's book of each of its instruments (GetBook, full
depth, with the partition sequence it was taken at); from then on the process applies
every level and trade event after that sequence, in order, as the engine sends them: one
call per partition follows its journal (Replay with follow and market_only), each batch
sent as soon as it is journaled, the same moment the submitter gets its answer. One call
has no gaps. When it breaks (the engine restarts), the next one resumes where it left
off, from the last event applied: that the engine sends it again, the same, shows the
engine still has the history the books were kept from. When it does not (the engine lost
its journal and has another by then), cannot give it (OUT_OF_RANGE), or a batch cannot
be read, the partition starts over from fresh books and every subscriber of its symbols
gets a new snapshot. So does a partition with nothing applied since its books were taken
(no event to check by), unless the engine's books are those it has, at the same
sequence: then nothing is sent.

Subscribers of the same kind (symbol, depth and conflation interval; or a symbol's
trades) share a view: what they were last sent, the sequence of it, and the last
RETAINED messages, encoded once and handed to every member. So a subscription's chain of
seq / prevSeq is the view's, a new member starts from a snapshot of the view, and a
member that missed messages gets them again from the view's memory, or a snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from typing import Any, Protocol

import grpc
import msgspec

from venue._reportwire import market_events
from venue.api.engines import EngineChannels, EngineUnavailable
from venue.api.reports import engine_time
from venue.contract.config import VenueConfig
from venue.contract.instruments import Instrument
from venue.contract.wire import SIDE_WORDS
from venue.enginepb import engine_pb2 as pb
from venue.market.book import BUY, CHECKSUM_DEPTH, SELL, Book, checksum
from venue.market.frames import text_frame
from venue.metrics import MARKET_MESSAGES

log = logging.getLogger(__name__)

RETAINED = 1024  # messages each view keeps for members that missed some
RECENT_TRADES = 100  # trades a trades snapshot carries
GET_BOOK_TIMEOUT_S = 5.0
RETRY_S = 0.5  # before following a partition again, or taking its books again
HEARTBEAT_S = 1.0  # a view's members get a heartbeat when it has sent nothing for this
BATCHES_PER_TURN = 64  # applied in one go of the event loop (a backlog takes several)
REMOVED = "0"  # the quantity of a level that is gone
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
        # The snapshot (text, frame) as the view stands, made for the first who asks and
        # given to each who asks until the view changes: a thousand subscribers coming
        # back after a restart, or a client asking again and again, cost one.
        self._snapshot: tuple[str, bytes] | None = None

    def broadcast(self, prev_seq: int, seq: int, message: dict[str, Any]) -> None:
        self._snapshot = None
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

    def beat(self) -> None:
        """A heartbeat, with the view's seq, to every member."""
        text = _encode({"type": "heartbeat", "channel": self.channel,
                        "symbol": self.symbol.instrument.symbol, "seq": self.seq}).decode()
        frame = text_frame(text.encode())
        for member in tuple(self.members):
            member.push(text, frame)

    def snapshot(self) -> tuple[str, bytes]:
        """The view's snapshot message and its WebSocket frame."""
        if self._snapshot is None:
            payload = self._snapshot_payload()
            self._snapshot = (payload.decode(), text_frame(payload))
        return self._snapshot

    def _snapshot_payload(self) -> bytes:
        raise NotImplementedError

    def reset(self) -> None:
        """The partition started over: begin again from the book as it now is."""
        self._snapshot = None
        self._reset()

    def _reset(self) -> None:
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

    def _reset(self) -> None:
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

    def _snapshot_payload(self) -> bytes:
        return _encode({
            "type": "snapshot", "channel": "book", "symbol": self.symbol.instrument.symbol,
            "seq": self.seq, "depth": self.depth, "interval": self.interval_ms,
            "bids": self._top(self.bids, True, 0), "asks": self._top(self.asks, False, 0),
            "checksum": self.checksum()})

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

    def _reset(self) -> None:
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

    def _snapshot_payload(self) -> bytes:
        return _encode({"type": "snapshot", "channel": "trades",
                        "symbol": self.symbol.instrument.symbol, "seq": self.seq,
                        "trades": list(self.recent)})


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

    def same_as(self, fresh: SymbolBook, applied: int) -> bool:
        """Whether `fresh` is this book: taken where this process has applied the
        partition to (`applied`), with the same levels."""
        return (fresh.through == applied
                and fresh.book.bids.quantity == self.book.bids.quantity
                and fresh.book.asks.quantity == self.book.asks.quantity)

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


class AnotherHistory(Exception):
    """The engine followed again sent another event than the last one applied: it lost
    its journal, and the books were kept from a history it no longer has."""


class Partition:
    def __init__(self) -> None:
        self.books: dict[int, SymbolBook] = {}  # by instrument id
        self.next = 0  # the next sequence to apply
        # The last event applied, and (following again) the one the engine must send first.
        self.last: MarketEvent | None = None
        self.check: MarketEvent | None = None
        self.ready = asyncio.Event()  # books taken (the engine answered)
        self.task: asyncio.Task | None = None  # MarketFeed._run
        self.heartbeats: asyncio.Task | None = None  # _heartbeats
        self.waiting = 0  # subscribers waiting for `ready`: the partition is in use


async def _heartbeats(partition: Partition) -> None:
    """Every HEARTBEAT_S, a heartbeat to the members of each of the partition's views
    that has sent them nothing for as long. One timer for all: a timer of each socket's
    was, for a thousand subscribers, a thousand sleeps a second, whose objects each lived
    long enough to reach the cyclic collector's oldest generation: about a third of what
    made a full collection over every connection's objects (30 to 60 ms of the event
    loop, every subscriber's message held behind it) every 5 s instead of every 7."""
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        quiet = time.monotonic() - HEARTBEAT_S
        for symbol in tuple(partition.books.values()):
            for view in (*symbol.views.values(), symbol.trade_view):
                if view is not None and view.members and view.last_sent <= quiet:
                    view.beat()


def _ended(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("market feed: a partition's feed ended (%r); started again by the next "
                  "subscriber", task.exception())


class MarketFeed:
    """The books and trades of every partition this process serves subscribers of."""

    def __init__(self, venue: VenueConfig, engines: EngineChannels) -> None:
        self.venue = venue
        self.engines = engines
        self._partitions: dict[int, Partition] = {}
        self.sockets = 0  # /v1/market sockets open (venue.market.socket counts them)
        self.sockets_by_address: Counter[str] = Counter()  # the same, by client address

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
        """Lets go of each partition nobody subscribes to (or waits for): no process keeps
        its books, and reads every event of it, for nothing."""
        idle = [index for index, p in self._partitions.items()
                if not (p.waiting or any(s.views or s.trade_view for s in p.books.values()))]
        self._stop_following(idle)

    def _stop_following(self, indexes: list[int] | None = None) -> list[asyncio.Task]:
        """Stops following the partitions `indexes` (all by default); their tasks."""
        tasks = []
        for index in list(self._partitions) if indexes is None else indexes:
            partition = self._partitions.pop(index)
            for task in (partition.task, partition.heartbeats):
                if task is not None:
                    task.cancel()
                    tasks.append(task)
        return tasks

    async def close(self) -> None:
        for partition in self._partitions.values():
            for symbol in partition.books.values():
                for view in symbol.views.values():
                    if view.timer is not None:
                        view.timer.cancel()
        await asyncio.gather(*self._stop_following(), return_exceptions=True)

    async def _symbol(self, instrument: Instrument) -> SymbolBook:
        """The instrument's book, its partition's feed started if it was not. The caller
        must not await between this and joining a view: the book is current only now."""
        index = self.venue.partition_of_shard(self.venue.shard_of(instrument))
        partition = self._partitions.get(index)
        if partition is None:
            partition = self._partitions[index] = Partition()
        if partition.task is None or partition.task.done():
            partition.task = asyncio.create_task(self._run(index, partition),
                                                 name=f"venue-market-{index}")
            partition.task.add_done_callback(_ended)
        if partition.heartbeats is None or partition.heartbeats.done():
            partition.heartbeats = asyncio.create_task(_heartbeats(partition),
                                                       name=f"venue-market-heartbeats-{index}")
        partition.waiting += 1
        try:
            await asyncio.wait_for(partition.ready.wait(), GET_BOOK_TIMEOUT_S * 2)
        except TimeoutError:
            raise EngineUnavailable(index, "no book from the engine in "
                                           f"{GET_BOOK_TIMEOUT_S * 2:.0f} s") from None
        finally:
            partition.waiting -= 1
        if self._partitions.get(index) is not partition:  # closed meanwhile
            raise EngineUnavailable(index, "the market feed is closing")
        return partition.books[instrument.id]

    # --- the events ------------------------------------------------------------------

    async def _run(self, index: int, partition: Partition) -> None:
        """The partition's feed, for as long as anyone subscribes: its books from the
        engine, then every level change and trade the engine journals after them."""
        fresh, start = True, partition.next
        while True:
            try:
                if fresh or partition.last is None:  # nothing to check another call by
                    await self._take_books(index, partition)
                    fresh = False
                    start = partition.next
                else:
                    partition.check = partition.last
                    start = partition.last[0]
                await self._follow(index, partition, start)
                reason = "the engine ended the call"
            except EngineUnavailable as error:  # no books: again
                reason = str(error)
            except AnotherHistory as error:
                reason, fresh = str(error), True
            except grpc.RpcError as error:
                reason = (f"Replay from {start} (applied through {partition.next - 1}): "
                          f"{error.code().name} {error.details()}")
                # What the engine no longer holds cannot be followed: fresh books.
                fresh = error.code() == grpc.StatusCode.OUT_OF_RANGE
            except Exception as error:  # noqa: BLE001 - set aside loudly, never stop the feed
                log.exception("market feed: partition %d failed on a batch from the engine; "
                              "starting over from fresh books", index)
                reason, fresh = repr(error), True
            log.warning("market feed: partition %d: %s; %s in %.1f s", index, reason,
                        "fresh books" if fresh or partition.last is None else "following again",
                        RETRY_S)
            await asyncio.sleep(RETRY_S)

    async def _take_books(self, index: int, partition: Partition) -> None:
        """The partition's books from the engine. Raises EngineUnavailable when it does
        not answer."""
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
            applied = partition.next - 1
            for instrument_id, book in fresh.items():
                symbol = partition.books[instrument_id]
                if symbol.same_as(book, applied):
                    continue  # (a quiet partition's engine back as it was): nothing to send
                symbol.replace(book)
                for view in (*symbol.views.values(), symbol.trade_view):
                    if view is not None:
                        view.reset()
                        text, frame = view.snapshot()
                        for member in tuple(view.members):
                            member.push(text, frame)
        else:
            partition.books = fresh
        partition.next = min(b.through for b in fresh.values()) + 1 if fresh else 1
        partition.last = partition.check = None
        partition.ready.set()

    async def _follow(self, index: int, partition: Partition, start: int) -> None:
        """Applies the engine's batches from `start` on, as it sends them. A thread
        of its own waits on the call and queues each batch; the event loop, once woken,
        applies what has come by then (at most BATCHES_PER_TURN, then it lets the rest of
        the loop run) and publishes once: each batch as it comes while the loop keeps up,
        fewer and larger updates when it falls behind."""
        loop = asyncio.get_running_loop()
        call = self.engines.follow_market(index, start)
        arrived: deque[bytes] = deque()
        ended = loop.create_future()
        woken = False

        def apply() -> None:
            nonlocal woken
            woken = False
            if ended.done():
                return
            batches = [arrived.popleft() for _ in range(min(len(arrived), BATCHES_PER_TURN))]
            try:
                self.on_batches(partition, batches)
            except Exception as error:  # noqa: BLE001 - ends the call; _run says why
                ended.set_exception(error)
                return
            if arrived and not woken:
                woken = True
                loop.call_soon(apply)

        def end(error: BaseException | None) -> None:
            if not ended.done():
                ended.set_exception(error) if error else ended.set_result(None)

        def read() -> None:
            nonlocal woken
            outcome: BaseException | None = None
            try:
                for batch in call:
                    arrived.append(batch)
                    if not woken:
                        woken = True
                        loop.call_soon_threadsafe(apply)
            except BaseException as error:  # noqa: BLE001 - handed to the event loop
                outcome = error
            try:
                loop.call_soon_threadsafe(end, outcome)
            except RuntimeError:
                pass  # the event loop is closed: nobody waits

        threading.Thread(target=read, name=f"venue-market-{index}", daemon=True).start()
        try:
            await ended
        finally:
            call.cancel()
            if not ended.done():
                ended.cancel()

    def on_batches(self, partition: Partition, batches: list[bytes]) -> None:
        """Applies batches of the partition's level changes and trades (each a
        ReportBatch's bytes, in the engine's order) and publishes what they changed, once.
        Raises ValueError when one cannot be read."""
        touched: set[SymbolBook] = set()
        for batch in batches:
            self._apply(partition, batch, touched)
        for symbol in touched:
            symbol.publish()

    def _apply(self, partition: Partition, batch: bytes, touched: set[SymbolBook]) -> None:
        next_sequence, events = market_events(batch)
        if partition.check is not None:
            first = events[0] if events else None
            if first != partition.check:
                raise AnotherHistory(f"the engine sent {first} where the last event applied, "
                                     f"{partition.check}, was: it has another history")
            partition.check = None
        books = partition.books
        start = partition.next
        for event in events:
            sequence, ns, instrument_id, side, price, quantity, trade_id = event
            if sequence < start:
                continue
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
        if events:
            partition.last = events[-1]
        # Where the batch reaches (the reports it left out included).
        reached = next_sequence or (events[-1][0] + 1 if events else 0)
        partition.next = max(partition.next, reached)
