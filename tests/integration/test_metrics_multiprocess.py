"""/metrics is right with several gateway workers: each worker records into the
gateway's multiprocess directory and whichever worker answers a scrape adds them all up,
so every scrape counts every order once (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import re

import httpx
import pytest


ORDERS = 40


@pytest.fixture
def two_workers(monkeypatch):
    monkeypatch.setenv("VENUE_GATEWAY_WORKERS", "2")


@pytest.fixture
def two_worker_venue(two_workers, local_venue):
    """The integration conftest's local venue, its gateway started with two workers."""
    return local_venue


def accepted(text: str) -> float:
    found = re.search(r'^venue_orders_accepted_total\{channel="http"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_every_scrape_counts_every_workers_orders(two_worker_venue):
    venue = two_worker_venue
    key = next(iter(venue.keys.values()))
    for i in range(ORDERS):
        # A connection each: the kernel hands them to both workers.
        with httpx.Client(base_url=venue.gateway_url, timeout=10) as client:
            answer = client.post("/v1/orders", headers={"Authorization": f"Bearer {key}"},
                                 json={"symbol": "BTC-USD", "side": "buy", "price": "1.00",
                                       "quantity": "0.5", "clientOrderId": f"m{i}"})
            assert answer.status_code == 202, answer.text
    scrapes = []
    for _ in range(10):
        with httpx.Client(base_url=venue.gateway_url, timeout=10) as client:
            scrapes.append(accepted(client.get("/metrics").text))
    assert scrapes == [ORDERS] * 10, scrapes
