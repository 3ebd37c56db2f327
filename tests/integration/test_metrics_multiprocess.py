"""/metrics is right with several gateway workers: each worker records into the
gateway's multiprocess directory and whichever worker answers a scrape adds them all up,
so every scrape counts every order once (prometheus_client's multiprocess mode); and with
one (`make run`'s), which serves what it keeps in memory."""

from __future__ import annotations

import re
import time

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


def test_one_worker_serves_every_order_it_counted(local_venue):
    key = next(iter(local_venue.keys.values()))
    with httpx.Client(base_url=local_venue.gateway_url, timeout=10) as client:
        before = accepted(client.get("/metrics").text)
        for i in range(5):
            answer = client.post("/v1/orders", headers={"Authorization": f"Bearer {key}"},
                                 json={"symbol": "BTC-USD", "side": "buy", "price": "1.00",
                                       "quantity": "0.5", "clientOrderId": f"one{i}"})
            assert answer.status_code == 202, answer.text
        scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert accepted(scraped.text) == before + 5, scraped.text[:500]


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


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    assert found, f"{name} missing:\n{text}"
    return float(found.group(1))


def test_the_submitter_and_the_writer_serve_their_own(local_venue):
    key = next(iter(local_venue.keys.values()))
    with httpx.Client(base_url=local_venue.gateway_url, timeout=10) as client:
        for i in range(5):
            answer = client.post("/v1/orders", headers={"Authorization": f"Bearer {key}"},
                                 json={"symbol": "BTC-USD", "side": "buy", "price": "1.00",
                                       "quantity": "0.5", "clientOrderId": f"p{i}"})
            assert answer.status_code == 202, answer.text

    def scrape(part: str) -> str:
        port = local_venue.metrics_ports[part]
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text

    deadline = time.monotonic() + 30
    while metric(scrape("writer"), "venue_writer_persisted_batches_total") < 1:
        assert time.monotonic() < deadline, scrape("writer")
        time.sleep(0.2)
    submitter = scrape("submitter-0")
    assert metric(submitter, "venue_submit_batch_commands_count") >= 1
    assert metric(submitter, "venue_engine_round_trip_seconds_count") >= 1
    assert 0 <= metric(scrape("writer"), "venue_writer_lag_seconds") < 30
