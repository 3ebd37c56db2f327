"""A price-level book (price -> total quantity per side) and the feed's checksum: one
home for both, used by the venue's feed and by the clients that keep a book from it.

A level is (price text, quantity text), the instrument's own decimal strings, as the
feed sends them. The checksum is the CRC-32 (zlib's) of the top CHECKSUM_DEPTH bids,
best first, then "|", then as many asks, best first, each level "price:quantity", the
levels of a side joined by ",".
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Callable, Iterable, Sequence

CHECKSUM_DEPTH = 10
BUY, SELL = 1, 2  # the engine's Side numbers

Level = tuple[str, str]


def checksum(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """The checksum of a book whose sides are given best first (only the top
    CHECKSUM_DEPTH levels of each count)."""
    text = (",".join(f"{p}:{q}" for p, q in bids[:CHECKSUM_DEPTH]) + "|"
            + ",".join(f"{p}:{q}" for p, q in asks[:CHECKSUM_DEPTH]))
    return zlib.crc32(text.encode("ascii"))


class PriceLevels:
    """One side of a book in integer ticks and lots: quantity by price, and the prices
    kept sorted ascending, so the best N are a slice."""

    __slots__ = ("quantity", "prices", "descending")

    def __init__(self, descending: bool) -> None:
        self.quantity: dict[int, int] = {}
        self.prices: list[int] = []
        self.descending = descending  # bids: the best price is the highest

    def set(self, price: int, quantity: int) -> None:
        """The level's total quantity after a change; 0 removes it."""
        had = price in self.quantity
        if quantity > 0:
            self.quantity[price] = quantity
            if not had:
                bisect.insort(self.prices, price)
        elif had:
            del self.quantity[price]
            index = bisect.bisect_left(self.prices, price)
            del self.prices[index]

    def best(self, depth: int) -> list[int]:
        """The best `depth` prices, best first (0: every price)."""
        prices = self.prices
        if self.descending:
            top = prices[-depth:] if depth else prices[:]
            top.reverse()
            return top
        return prices[:depth] if depth else prices[:]

    def __len__(self) -> int:
        return len(self.prices)


class Book:
    """An instrument's book as integer levels, with the texts the feed writes them in."""

    __slots__ = ("bids", "asks", "price_text", "quantity_text", "_prices")

    def __init__(self, price_text: Callable[[int], str],
                 quantity_text: Callable[[int], str]) -> None:
        self.bids = PriceLevels(descending=True)
        self.asks = PriceLevels(descending=False)
        self.quantity_text = quantity_text
        self.price_text = price_text
        self._prices: dict[int, str] = {}

    def side(self, side: int) -> PriceLevels:
        return self.bids if side == BUY else self.asks

    def text(self, price: int) -> str:
        """The price's decimal string, remembered (Decimal formatting is slow)."""
        text = self._prices.get(price)
        if text is None:
            if len(self._prices) > 100_000:
                self._prices.clear()
            text = self._prices[price] = self.price_text(price)
        return text

    def levels(self, side: int, prices: Iterable[int]) -> list[Level]:
        quantity = self.side(side).quantity
        return [(self.text(p), self.quantity_text(quantity.get(p, 0))) for p in prices]

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        return (self.levels(BUY, self.bids.best(depth)),
                self.levels(SELL, self.asks.best(depth)))

    def checksum(self, depth: int = 0) -> int:
        """The checksum of this book seen `depth` levels deep (0: all of it)."""
        shown = min(depth, CHECKSUM_DEPTH) if depth else CHECKSUM_DEPTH
        return checksum(*self.top(shown))
