"""The venue page in Debian's headless Chromium, driven by selenium through chromedriver.

`page`: a browser on a local venue's page (tests/conftest.py's `local_venue`), its
/v1/market socket tapped: what the page sends is recorded, and a test can have the next
book update dropped (a gap) or corrupted (a checksum mismatch) before the page reads it.
The page must be built (`make page`); a machine without chromium skips, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from venue.api.page import PAGE_DIST
from venue.local.venue import LocalVenue

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--window-size=1280,900")

# Runs in the page before its own code: wraps WebSocket so the test sees what the page
# sends and can spoil the next book update it receives (window.__tap = "drop" or
# "corrupt"; it resets itself to "" once done).
MARKET_TAP = """
(() => {
  const Native = window.WebSocket;
  window.__sent = [];
  window.__tap = "";
  window.__spoiled = null;
  window.__received = [];  // the last messages, as they came
  function spoil(data) {
    window.__received.push(String(data));
    if (window.__received.length > 40) window.__received.shift();
    if (!window.__tap || typeof data !== "string") return data;
    const message = JSON.parse(data);
    if (message.type !== "update" || message.channel !== "book") return data;
    const levels = message.bids.length ? message.bids : message.asks;
    if (window.__tap === "corrupt" && !levels.length) return data;
    window.__spoiled = {tap: window.__tap, seq: message.seq, prevSeq: message.prevSeq};
    if (window.__tap === "drop") { window.__tap = ""; return null; }
    window.__tap = "";
    levels[0][1] = "999";  // the page's book now disagrees with the venue's
    return JSON.stringify(message);
  }
  class TappedSocket extends Native {
    send(data) { window.__sent.push(String(data)); return super.send(data); }
    addEventListener(type, listener, options) {
      if (type !== "message") return super.addEventListener(type, listener, options);
      return super.addEventListener(type, (event) => {
        const data = spoil(event.data);
        if (data === null) return;
        listener.call(this, data === event.data ? event : new MessageEvent("message", {data}));
      }, options);
    }
  }
  window.WebSocket = TappedSocket;
})();
"""


@dataclass
class Page:
    """The browser on the venue page, and the venue behind it."""

    driver: Any
    venue: LocalVenue

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, condition: Callable[[], Any], timeout: float = 30,
             what: str = "the page") -> Any:
        """What `condition` returns once truthy; fails saying what it waited for."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout} s for {what}; last: {value!r}\n"
                                     f"book status: {self.text('book-status')!r}, alert: "
                                     f"{self.text('book-alert')!r}, feed: "
                                     f"{self.text('feed-status')!r}\nsent: "
                                     f"{self.js('return window.__sent')}\nreceived: "
                                     f"{self.js('return window.__received')}")
            time.sleep(0.05)

    def text(self, element_id: str) -> str:
        return self.js(f"return document.getElementById('{element_id}')?.textContent ?? ''")

    def ladder(self) -> dict[str, list[tuple[str, str]]]:
        """The ladder's levels per side, best first."""
        rows = self.js("return [...document.querySelectorAll('#ladder tbody tr[data-side]')]"
                       ".map(r => [r.dataset.side, r.dataset.price, r.dataset.quantity])")
        bids = [(p, q) for side, p, q in rows if side == "bid"]
        asks = [(p, q) for side, p, q in rows if side == "ask"][::-1]
        return {"bids": bids, "asks": asks}

    def trade_ids(self) -> list[str]:
        return self.js("return [...document.querySelectorAll('#trades tbody tr[data-trade-id]')]"
                       ".map(r => r.dataset.tradeId)")

    def sent(self) -> list[dict]:
        """What the page sent on its /v1/market socket."""
        return [json.loads(text) for text in self.js("return window.__sent")]

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))


@dataclass
class Venue:
    """The REST API of the venue, as a test drives it."""

    url: str
    keys: dict[str, str]

    def call(self, method: str, path: str, key: str | None = None,
             body: dict | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return httpx.request(method, f"{self.url}{path}", json=body, headers=headers,
                             timeout=30)

    def order(self, key: str, side: str, price: str, quantity: str,
              symbol: str = "BTC-USD") -> str:
        answer = self.call("POST", "/v1/orders", key, {"symbol": symbol, "side": side,
                                                       "price": price, "quantity": quantity})
        assert answer.status_code == 202, answer.text
        return answer.json()["orderId"]

    def book(self, symbol: str = "BTC-USD") -> dict[str, list[tuple[str, str]]]:
        book = self.call("GET", f"/v1/books/{symbol}?depth=10").json()
        return {side: [(level["price"], level["quantity"]) for level in book[side]]
                for side in ("bids", "asks")}

    def trades(self, symbol: str = "BTC-USD") -> list[dict]:
        return self.call("GET", f"/v1/trades/{symbol}?limit=100").json()

    def order_status(self, key: str, order_id: str) -> str:
        return self.call("GET", f"/v1/orders/{order_id}", key).json()["status"]

    def open_order_ids(self, key: str) -> set[str]:
        answer = self.call("GET", "/v1/orders?status=open", key).json()
        return {order["orderId"] for order in answer["orders"]}


@pytest.fixture
def venue(local_venue: LocalVenue) -> Venue:
    return Venue(local_venue.gateway_url, local_venue.keys)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if missing:
        pytest.skip(f"no {' and no '.join(missing)}: apt-get install chromium chromium-driver "
                    "(make test does, as root)")
    if not (PAGE_DIST / "index.html").is_file():
        pytest.fail(f"the venue page is not built ({PAGE_DIST}): run `make page`")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    # Chromium keeps its profile and its singleton socket in temporary directories of
    # its own, and leaves the socket's behind when it exits: this test's take them.
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    service = Service(CHROMEDRIVER, env={**os.environ, "TMPDIR": str(tmp_path)})
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": MARKET_TAP})
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: Any, local_venue: LocalVenue) -> Page:
    """The venue page on BTC-USD, its book in sync with the venue's."""
    browser.get(f"{local_venue.gateway_url}/#BTC-USD")
    page = Page(browser, local_venue)
    page.wait(lambda: "in sync at seq" in page.text("book-status"), what="the book's snapshot")
    return page
