"""A client's book kept from /v1/market by README.md's rules ("Market data"): what the
tests, the chaos test and `venue bench market` hold the venue's feed to.

FeedBook takes the feed's messages as they arrive, in any order, some never, and says
what to ask the venue (resync requests). It applies an update only on top of the message
before it (prevSeq == its seq), holds updates that came early until their turn, drops
stale ones, checks the checksum after each message, and asks for the missed range on a
gap, or a snapshot when its checksum fails.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from venue.market.book import checksum

ASK_AGAIN_S = 1.0  # a resync that brought nothing in this long is asked again


class FeedBook:
    def __init__(self, symbol: str, depth: int = 10) -> None:
        self.symbol = symbol
        self.depth = depth
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.seq: int | None = None
        self.early: dict[int, dict[str, Any]] = {}  # updates that came early, by prevSeq
        self.asked: tuple[int | None, float] | None = None  # (from, when) of the last ask
        self.gaps = self.checksum_failures = self.snapshots = self.applied = 0

    # --- the rules ---------------------------------------------------------------------

    def on_message(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Takes one message of this book's subscription; returns the requests to send."""
        kind = message.get("type")
        if kind == "snapshot":
            self.bids = dict(message["bids"])
            self.asks = dict(message["asks"])
            self.seq = message["seq"]
            self.snapshots += 1
            self.asked = None
            self.early = {k: m for k, m in self.early.items() if m["seq"] > self.seq}
            if not self._checks(message):
                return self._broken()
            return self._drain()
        if kind == "update":
            if self.seq is None:  # waiting for a snapshot
                return self._ask_again()
            if message["seq"] <= self.seq:
                return []  # stale
            if message["prevSeq"] != self.seq:
                self.early[message["prevSeq"]] = message
                return self._gap()
            self._apply(message)
            if not self._checks(message):
                return self._broken()
            return self._drain()
        if kind == "heartbeat":
            if self.seq is None:
                return self._ask_again()
            if message["seq"] > self.seq:
                return self._gap()
        return []

    def _ask_again(self) -> list[dict[str, Any]]:
        """Waiting for a snapshot: ask again when the last ask brought none."""
        if self.asked is None or time.monotonic() - self.asked[1] >= ASK_AGAIN_S:
            return self._resync(None)
        return []

    def _apply(self, message: dict[str, Any]) -> None:
        for side, changes in ((self.bids, message["bids"]), (self.asks, message["asks"])):
            for price, quantity in changes:
                if Decimal(quantity) == 0:
                    side.pop(price, None)
                else:
                    side[price] = quantity
        self.seq = message["seq"]
        self.applied += 1

    def _drain(self) -> list[dict[str, Any]]:
        """Applies the held updates whose turn has come."""
        while self.seq in self.early:
            message = self.early.pop(self.seq)
            if message["seq"] <= self.seq:
                continue
            self._apply(message)
            if not self._checks(message):
                return self._broken()
        if self.asked is not None and self.asked[0] != self.seq:
            self.asked = None
        return []

    def _gap(self) -> list[dict[str, Any]]:
        asked = self.asked
        if asked is not None and asked[0] == self.seq and time.monotonic() - asked[1] < ASK_AGAIN_S:
            return []  # asked already; the answer may be on its way
        self.gaps += 1
        return self._resync(self.seq)

    def _resync(self, since: int | None) -> list[dict[str, Any]]:
        """Asks for what came after `since`, or a snapshot (None)."""
        self.asked = (since, time.monotonic())
        request = {"type": "resync", "channel": "book", "symbol": self.symbol}
        return [request if since is None else request | {"from": since}]

    def _broken(self) -> list[dict[str, Any]]:
        """The checksum failed: the book is wrong until a snapshot replaces it."""
        self.checksum_failures += 1
        self.seq = None
        self.early.clear()
        return self._resync(None)

    def _checks(self, message: dict[str, Any]) -> bool:
        return checksum(*self.top(10)) == message["checksum"]

    # --- reading it --------------------------------------------------------------------

    def top(self, depth: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=lambda level: Decimal(level[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda level: Decimal(level[0]))
        return (bids[:depth], asks[:depth]) if depth else (bids, asks)


def subscribe_book(symbol: str, depth: int = 10, interval: int = 0) -> dict[str, Any]:
    return {"type": "subscribe", "channel": "book", "symbol": symbol, "depth": depth,
            "interval": interval}
