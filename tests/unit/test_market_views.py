"""The market feed's views fed batches as the engine sends them, without a venue: the
batches applied in one go (one, or several for a feed that fell behind) go out as one
update and one trades message, chained by seq / prevSeq to what went before, carrying
the book as of the batch's last event."""

from __future__ import annotations

import json
from typing import Any

from venue.contract.config import VenueConfig
from venue.enginepb import engine_pb2 as pb
from venue.market.book import BUY, SELL
from venue.market.feed import BookView, MarketFeed, Partition, SymbolBook, TradeView

SNAPSHOT_SEQ = 10


class Member:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def push(self, text: str, frame: bytes | None = None) -> None:
        self.messages.append(json.loads(text))


def level(sequence: int, instrument: int, side: int, price: int, quantity: int) -> pb.Event:
    return pb.Event(sequence=sequence, timestamp_ns=sequence * 1000, level=pb.LevelUpdate(
        instrument_id=instrument, side=side, price=price, quantity=quantity))


def trade(sequence: int, instrument: int, trade_id: int, price: int) -> pb.Event:
    return pb.Event(sequence=sequence, timestamp_ns=sequence * 1000, trade=pb.Trade(
        trade_id=trade_id, instrument_id=instrument, price=price, quantity=3,
        aggressor_side=SELL))


def batch(*events: pb.Event, next_sequence: int = 0) -> bytes:
    return pb.ReportBatch(events=list(events), next_sequence=next_sequence).SerializeToString()


def one_partition() -> tuple[MarketFeed, Partition, SymbolBook]:
    """A feed with the partition of the first instrument, its books empty as of
    SNAPSHOT_SEQ; and that instrument's book."""
    venue = VenueConfig()
    instrument = venue.instruments[0]
    index = venue.partition_of_shard(venue.shard_of(instrument))
    feed = MarketFeed(venue, engines=None)  # type: ignore[arg-type]
    partition = feed._partitions[index] = Partition()
    partition.books = {i.id: SymbolBook(i, pb.BookSnapshot(instrument_id=i.id,
                                                          sequence=SNAPSHOT_SEQ))
                       for i in venue.instruments_of_partition(index)}
    partition.next = SNAPSHOT_SEQ + 1
    partition.ready.set()
    return feed, partition, partition.books[instrument.id]


async def test_the_batches_of_one_go_go_out_as_one_update_and_one_trades_message() -> None:
    feed, partition, symbol = one_partition()
    instrument = symbol.instrument
    book_view = symbol.views[(10, 0)] = BookView(symbol, depth=10, interval_ms=0)
    symbol.trade_view = TradeView(symbol)
    books, trades = Member(), Member()
    book_view.members.add(books)
    symbol.trade_view.members.add(trades)
    report = pb.Event(sequence=12, report=pb.ExecutionReport(order_id=1))

    feed.on_batches(partition, [
        batch(level(11, instrument.id, BUY, 100, 5), report),
        batch(level(13, instrument.id, BUY, 101, 2), trade(14, instrument.id, 1, 101),
              level(15, instrument.id, BUY, 100, 0), level(16, instrument.id, SELL, 103, 4)),
        batch(trade(17, instrument.id, 2, 101))])

    price, quantity = instrument.price_text, instrument.quantity_text
    assert len(books.messages) == 1  # the level at 100 came and went within the go
    update = books.messages[0]
    assert (update["prevSeq"], update["seq"]) == (SNAPSHOT_SEQ, 16)
    assert update["bids"] == [[price(101), quantity(2)]]
    assert update["asks"] == [[price(103), quantity(4)]]
    assert update["checksum"] == book_view.checksum()
    assert len(trades.messages) == 1
    assert (trades.messages[0]["prevSeq"], trades.messages[0]["seq"]) == (SNAPSHOT_SEQ, 17)
    assert [t["tradeId"] for t in trades.messages[0]["trades"]] == ["1", "2"]

    # A batch of reports only (market_only left them out) still moves the partition on.
    feed.on_batches(partition, [batch(level(18, instrument.id, BUY, 101, 0)),
                                batch(next_sequence=25)])
    assert (books.messages[1]["prevSeq"], books.messages[1]["seq"]) == (16, 18)
    assert books.messages[1]["bids"] == [[price(101), "0"]]
    assert partition.next == 25


async def test_a_snapshot_is_made_once_for_all_who_ask_until_its_view_changes() -> None:
    feed, partition, symbol = one_partition()
    instrument = symbol.instrument
    price, quantity = instrument.price_text, instrument.quantity_text
    full = symbol.views[(0, 0)] = BookView(symbol, depth=0, interval_ms=0)
    top = symbol.views[(1, 0)] = BookView(symbol, depth=1, interval_ms=0)
    trades = symbol.trade_view = TradeView(symbol)
    feed.on_batches(partition, [batch(level(11, instrument.id, BUY, 100, 5))])
    first = full.snapshot()
    assert full.snapshot() is first  # the same, made once
    text, frame = first
    assert frame.endswith(text.encode())  # the frame is the text's
    assert json.loads(text)["bids"] == [[price(100), quantity(5)]]
    # A level below the top: the full view changes, the top one does not.
    top_before = top.snapshot()
    feed.on_batches(partition, [batch(level(12, instrument.id, BUY, 99, 2))])
    assert top.snapshot() is top_before
    after = json.loads(full.snapshot()[0])
    assert (after["seq"], after["bids"]) == (12, [[price(100), quantity(5)],
                                                  [price(99), quantity(2)]])
    # A trade changes the trade view's.
    assert json.loads(trades.snapshot()[0])["trades"] == []
    feed.on_batches(partition, [batch(trade(13, instrument.id, 1, 100))])
    assert [t["tradeId"] for t in json.loads(trades.snapshot()[0])["trades"]] == ["1"]
    # The partition starting over from other levels at the same sequence: the views are
    # reset, and their snapshots are the new book's.
    symbol.replace(SymbolBook(instrument, pb.BookSnapshot(
        instrument_id=instrument.id, sequence=13,
        bids=[pb.BookLevel(price=98, quantity=7)])))
    full.reset()
    top.reset()
    assert json.loads(full.snapshot()[0])["bids"] == [[price(98), quantity(7)]]
    assert json.loads(top.snapshot()[0])["bids"] == [[price(98), quantity(7)]]
