"""The feed's book, checksum and the client's rules, without a venue: the checksum is
README's example, the sides keep their order, and a FeedBook applies each update once, on
top of the one before, whatever order they come in."""

from __future__ import annotations

import zlib

from venue.market.book import BUY, SELL, Book, checksum
from venue.market.client import FeedBook


def test_the_checksum_is_the_crc32_of_the_top_ten_levels_as_readme_writes_them():
    bids = [("30000.00", "1.5000"), ("29999.50", "0.2500")]
    asks = [("30000.50", "0.7500")]
    text = b"30000.00:1.5000,29999.50:0.2500|30000.50:0.7500"
    assert checksum(bids, asks) == zlib.crc32(text)
    assert checksum([], []) == zlib.crc32(b"|")
    deep = [(f"{100 - i}.00", "1") for i in range(15)]
    assert checksum(deep, []) == checksum(deep[:10], [])


def test_a_book_keeps_each_side_best_first_and_drops_empty_levels():
    book = Book(lambda ticks: f"{ticks / 100:.2f}", lambda lots: str(lots))
    for price in (100, 102, 101):
        book.side(BUY).set(price, 5)
        book.side(SELL).set(price + 10, 3)
    book.side(BUY).set(102, 0)
    book.side(BUY).set(103, 0)  # removing a level that is not there changes nothing
    assert book.bids.best(0) == [101, 100]
    assert book.asks.best(2) == [110, 111]
    assert book.top(1) == ([("1.01", "5")], [("1.10", "3")])
    assert book.checksum(1) == checksum([("1.01", "5")], [("1.10", "3")])


def _snapshot(seq, bids, asks=()):
    return {"type": "snapshot", "seq": seq, "bids": list(bids), "asks": list(asks),
            "checksum": checksum(list(bids), list(asks))}


def _update(prev, seq, bids, book_after):
    return {"type": "update", "seq": seq, "prevSeq": prev, "bids": bids, "asks": [],
            "checksum": checksum(book_after, [])}


def test_updates_in_any_order_are_applied_in_theirs_and_stale_ones_dropped():
    book = FeedBook("X")
    assert book.on_message(_snapshot(10, [("5.00", "1")])) == []
    first = _update(10, 12, [["5.00", "2"]], [("5.00", "2")])
    second = _update(12, 15, [["4.00", "1"]], [("5.00", "2"), ("4.00", "1")])
    # The second comes first: held, and a resync asked from where the book is.
    assert book.on_message(second) == [{"type": "resync", "channel": "book",
                                        "symbol": "X", "from": 10}]
    assert book.on_message(first) == []  # then both apply, in order
    assert (book.seq, book.top()) == (15, ([("5.00", "2"), ("4.00", "1")], []))
    assert book.on_message(first) == []  # stale: dropped
    assert book.seq == 15 and book.gaps == 1 and book.checksum_failures == 0


def test_a_heartbeat_past_the_book_is_a_gap_and_a_bad_checksum_asks_for_a_snapshot():
    book = FeedBook("X")
    book.on_message(_snapshot(3, [("5.00", "1")]))
    assert book.on_message({"type": "heartbeat", "seq": 3}) == []
    assert book.on_message({"type": "heartbeat", "seq": 9})[0]["from"] == 3
    wrong = _update(3, 4, [["5.00", "0"]], [("5.00", "7")])
    assert book.on_message(wrong) == [{"type": "resync", "channel": "book", "symbol": "X"}]
    assert book.seq is None and book.checksum_failures == 1
    assert book.on_message(_snapshot(4, [])) == []
    assert book.seq == 4 and book.top() == ([], [])
