"""The venue page (gateway/venue/page) as a person uses it, in headless Chromium on a
local venue: the ladder it keeps from /v1/market is the venue's book, a trade shows at
once, a pasted key shows the account's open orders and cancels one, the order ticket
shows each 422 by its field, and a gap or a checksum mismatch is resynced and said.

VENUE_PAGE_SCREENSHOT=docs/venue-page.png saves the page, with its book and trades, from
the first test (README's picture).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from venue.api.page import mount_page

pytestmark = pytest.mark.integration

ALICE, BOB = "alice", "bob"
# A resync without `from` asks for a fresh snapshot (README, "Market data").
SNAPSHOT_PLEASE = {"type": "resync", "channel": "book", "symbol": "BTC-USD"}


def rest_a_book(venue) -> None:
    """Five bids of alice's and five asks of bob's on BTC-USD."""
    for price, quantity in (("30000.00", "0.5000"), ("29999.50", "1.2500"),
                            ("29998.00", "0.7500"), ("29995.00", "2.0000"),
                            ("29990.00", "3.5000")):
        venue.order(ALICE, "buy", price, quantity)
    for price, quantity in (("30001.00", "0.4000"), ("30002.50", "1.0000"),
                            ("30004.00", "0.6000"), ("30010.00", "2.5000"),
                            ("30020.00", "4.0000")):
        venue.order(BOB, "sell", price, quantity)


def shows_the_venues_book(page, venue) -> bool:
    return page.ladder() == venue.book() and "in sync at seq" in page.text("book-status")


def test_the_ladder_is_the_venues_book_and_a_trade_shows_within_a_second(
        page, venue) -> None:
    symbols = page.js("return [...document.querySelectorAll('#symbol option')]"
                      ".map(o => o.value)")
    assert symbols == [i["symbol"] for i in venue.call("GET", "/v1/instruments").json()]

    rest_a_book(venue)
    page.wait(lambda: len(venue.book()["asks"]) == 5, what="the venue's book")
    page.wait(lambda: shows_the_venues_book(page, venue), what="the ladder to be the book")
    assert page.ladder()["bids"][0] == ("30000.00", "0.5000")

    # Bob takes alice's best bid and part of the next; alice takes bob's best ask.
    venue.order(BOB, "sell", "30000.00", "0.5000")
    venue.order(BOB, "sell", "29999.50", "0.2500")
    venue.order(ALICE, "buy", "30001.00", "0.4000")
    trades = page.wait(lambda: len(venue.trades()) == 3 and venue.trades(),
                       what="the venue to persist 3 trades")
    # The feed runs ahead of the database: once REST has the trades, the page has them.
    page.wait(lambda: set(page.trade_ids()) >= {t["tradeId"] for t in trades}, timeout=1,
              what="the trades on the page within a second")
    assert page.text("book-alert") == "", "no gap and no checksum mismatch"
    page.wait(lambda: shows_the_venues_book(page, venue), what="the ladder after the trades")
    assert page.ladder()["bids"][0] == ("29999.50", "1.0000")
    assert page.ladder()["asks"][0] == ("30002.50", "1.0000")

    if os.environ.get("VENUE_PAGE_SCREENSHOT"):
        page.driver.set_window_size(1280, 1000)
        page.driver.find_element(By.ID, "api-key").send_keys(venue.keys[ALICE])
        page.driver.find_element(By.ID, "use-key").click()
        page.wait(lambda: len(page.driver.find_elements(By.CSS_SELECTOR,
                                                        "#orders tr[data-order-id]")) == 4)
        page.screenshot(Path(os.environ["VENUE_PAGE_SCREENSHOT"]))


def test_another_symbol_gets_a_ladder_of_its_own(page, venue) -> None:
    venue.order(ALICE, "buy", "30000.00", "0.5000")
    venue.order(BOB, "sell", "2000.00", "1.500", symbol="ETH-USD")
    page.wait(lambda: shows_the_venues_book(page, venue), what="the BTC-USD ladder")

    Select(page.driver.find_element(By.ID, "symbol")).select_by_value("ETH-USD")
    page.wait(lambda: page.ladder() == venue.book("ETH-USD") == {
        "bids": [], "asks": [("2000.00", "1.500")]}, what="the ETH-USD ladder")
    assert page.js("return location.hash") == "#ETH-USD"
    assert page.driver.find_element(By.ID, "ticket-symbol").get_attribute("value") == "ETH-USD"
    assert page.text("book-alert") == ""


def test_a_pasted_key_shows_the_open_orders_and_cancels_one_from_the_page(
        page, venue) -> None:
    kept = venue.order(ALICE, "buy", "29000.00", "0.2000")
    canceled = venue.order(ALICE, "buy", "29001.00", "0.3000")
    venue.order(BOB, "sell", "31000.00", "1.0000")  # bob's: not on alice's page
    page.wait(lambda: venue.open_order_ids(ALICE) == {kept, canceled},
              what="alice's orders open in the venue")

    page.driver.find_element(By.ID, "api-key").send_keys(venue.keys[ALICE])
    page.driver.find_element(By.ID, "use-key").click()
    rows = page.wait(lambda: {row.get_attribute("data-order-id") for row in
                              page.driver.find_elements(By.CSS_SELECTOR,
                                                        "#orders tr[data-order-id]")},
                     what="the open orders")
    assert rows == {kept, canceled}

    page.driver.find_element(
        By.CSS_SELECTOR, f"#orders button.cancel[data-order-id='{canceled}']").click()
    page.wait(lambda: venue.order_status(ALICE, canceled) == "canceled",
              what="the order canceled in the venue")
    assert venue.order_status(ALICE, kept) == "new"
    page.wait(lambda: not page.driver.find_elements(
        By.CSS_SELECTOR, f"#orders tr[data-order-id='{canceled}']"),
        what="the canceled order gone from the page")


def test_the_ticket_shows_a_bad_prices_422_message_next_to_the_price(
        page, venue) -> None:
    bad = {"symbol": "BTC-USD", "side": "buy", "price": "30000.005", "quantity": "0.5000"}
    answer = venue.call("POST", "/v1/orders", ALICE, bad)
    assert answer.status_code == 422
    [expected] = [e["msg"] for e in answer.json()["detail"] if e["loc"] == ["body", "price"]]

    page.driver.find_element(By.ID, "api-key").send_keys(venue.keys[ALICE])
    page.driver.find_element(By.ID, "use-key").click()
    page.driver.find_element(By.ID, "ticket-price").send_keys(bad["price"])
    page.driver.find_element(By.ID, "ticket-quantity").send_keys(bad["quantity"])
    page.driver.find_element(By.ID, "ticket-submit").click()

    page.wait(lambda: page.text("ticket-price-error"), what="the price's error")
    assert page.text("ticket-price-error") == expected
    assert page.text("ticket-quantity-error") == ""
    price = page.driver.find_element(By.ID, "ticket-price")
    assert price.get_attribute("aria-invalid") == "true"

    page.driver.find_element(By.ID, "ticket-price").clear()
    page.driver.find_element(By.ID, "ticket-price").send_keys("30000.00")
    page.driver.find_element(By.ID, "ticket-submit").click()
    page.wait(lambda: page.text("ticket-result").startswith("accepted"), what="the order")
    assert page.text("ticket-price-error") == ""
    page.wait(lambda: len(venue.open_order_ids(ALICE)) == 1, what="the order open")


def test_a_checksum_mismatch_resyncs_from_a_snapshot_and_says_so(
        page, venue) -> None:
    rest_a_book(venue)
    page.wait(lambda: shows_the_venues_book(page, venue), what="the ladder to be the book")

    page.js("window.__tap = 'corrupt'")  # the next update reaches the page spoiled
    venue.order(ALICE, "buy", "29999.00", "0.1000")
    page.wait(lambda: "checksum mismatch: resynced" in page.text("book-alert"),
              what="the mismatch said")
    assert SNAPSHOT_PLEASE in page.sent()
    page.wait(lambda: shows_the_venues_book(page, venue), what="the book again after it")
    assert ("29999.00", "0.1000") in page.ladder()["bids"]


def test_a_gap_asks_for_what_follows_the_books_seq_and_fills_it(
        page, venue) -> None:
    rest_a_book(venue)
    page.wait(lambda: shows_the_venues_book(page, venue), what="the ladder to be the book")
    at = int(re.search(r"seq (\d+)", page.text("book-status")).group(1))

    page.js("window.__tap = 'drop'")  # the next update never reaches the page
    venue.order(ALICE, "buy", "29999.00", "0.1000")
    venue.order(BOB, "sell", "30003.00", "0.2000")
    page.wait(lambda: page.js("return window.__spoiled"), what="an update dropped")
    page.wait(lambda: {"type": "resync", "channel": "book", "symbol": "BTC-USD",
                       "from": at} in page.sent(), what=f"a resync from {at}")
    page.wait(lambda: shows_the_venues_book(page, venue), what="the book with the gap filled")
    assert "gap after seq" in page.text("book-alert")
    assert SNAPSHOT_PLEASE not in page.sent(), "the missed update was replayed, not a snapshot"


async def test_a_gateway_without_the_built_page_says_how_to_build_it(tmp_path: Path) -> None:
    app = FastAPI()
    mount_page(app, tmp_path / "dist")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://gateway") as client:
        answer = await client.get("/")
    assert answer.status_code == 503
    assert "make page" in answer.text
