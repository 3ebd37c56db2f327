"""One order's trace, followed from the request to the database in a real Jaeger.

A Jaeger (built from Go modules, in-memory) and a local venue whose gateway, submitter
and writer export to it. Two crossing orders carry sampled traceparents of the client's;
each order's trace, read back through Jaeger's query API, holds the whole chain:

    POST /v1/orders (SERVER, the client's span its parent)
      publish tv:<venue>:orders:<shard> (PRODUCER)
        process tv:<venue>:orders (CONSUMER, the submitter's batch; linked to the order)
          tradingvenue.engine.v1.MatchingEngine/Submit (CLIENT)
            engine queue, engine match, engine journal, engine answer (the engine's own
            time, inside the round trip)
          process tv:<venue>:events (CONSUMER, the writer's transaction; linked)
          push tv:<venue>:events:<partition> (PRODUCER, the gateway's WebSocket push)

and no span whose parent is missing but the root's (the client's own span).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import time

import httpx
import pytest
from websockets.sync.client import connect

from venue import telemetry
from venue.contract.wire import method_path
from venue.local.jaeger import JaegerServer, spans_of

SUBMIT = method_path("Submit").lstrip("/")  # tradingvenue.engine.v1.MatchingEngine/Submit
# OTLP's SpanKind numbers, as Jaeger's API returns them.
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5
ENGINE_CHILDREN = ["engine queue", "engine match", "engine journal", "engine answer"]


@pytest.fixture
def exporting(jaeger, monkeypatch):
    # Every part inherits the environment: they export to Jaeger, sampling none but what
    # a client asks for (ratio 0), so the traces seen are exactly the test's.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.otlp_endpoint)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")


@pytest.fixture
def traced_venue(exporting, local_venue):
    """The integration conftest's local venue, started after `exporting` set the env."""
    return local_venue


def wait_for_trace(jaeger: JaegerServer, trace_id: str, names: set[str],
                   timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    spans: list[dict] = []
    while time.monotonic() < deadline:
        trace = jaeger.trace(trace_id)
        spans = spans_of(trace) if trace else []
        if names <= {s["name"] for s in spans}:
            return spans
        time.sleep(0.5)
    raise AssertionError(f"trace {trace_id}: {sorted(s['name'] for s in spans)}, "
                         f"wanted {sorted(names)}")


def test_an_orders_trace_runs_from_the_request_to_postgres(traced_venue, jaeger):
    venue = traced_venue
    keys = list(venue.keys.values())
    sent = []
    # Both accounts have a WebSocket open: their execution reports are pushed, traced.
    opened = contextlib.ExitStack()
    sockets = [opened.enter_context(connect(
        venue.gateway_url.replace("http://", "ws://") + "/v1/ws",
        additional_headers={"Authorization": f"Bearer {key}"}, proxy=None)) for key in keys]
    for socket in sockets:
        assert json.loads(socket.recv(timeout=10))["type"] == "authenticated"
    prefix = f"tv:{venue.venue.name}"
    wanted = {"POST /v1/orders", "process " + prefix + ":orders",
              SUBMIT, "process " + prefix + ":events", f"push {prefix}:events:0",
              *ENGINE_CHILDREN}
    with httpx.Client(base_url=venue.gateway_url, timeout=10) as client:
        # One at a time, each traced through before the next: a batch is the child of its
        # first sampled order only (the others it links to), so each has a batch of its own.
        for key, side, coid in zip(keys, ("buy", "sell"), ("traced-buy", "traced-sell")):
            trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
            answer = client.post("/v1/orders", headers={
                "Authorization": f"Bearer {key}",
                "traceparent": f"00-{trace_id}-{client_span}-01"}, json={
                "symbol": "BTC-USD", "side": side, "price": "30000.00", "quantity": "0.5",
                "clientOrderId": coid})
            assert answer.status_code == 202, answer.text
            sent.append((trace_id, client_span, answer.json()["orderId"], coid,
                         wait_for_trace(jaeger, trace_id, wanted)))
    for trace_id, client_span, order_id, coid, spans in sent:
        by_id = {s["spanId"]: s for s in spans}
        named = {s["name"]: s for s in spans}

        def parent(span: dict) -> dict | None:
            return by_id.get(span.get("parentSpanId") or "")

        server = named["POST /v1/orders"]
        assert server["service"] == "venue-gateway" and server["kind"] == SERVER
        assert server["parentSpanId"] == client_span  # the client's sampled context
        assert server["attrs"]["venue.order_id"] == order_id
        assert server["attrs"]["venue.client_order_id"] == coid
        assert server["attrs"]["http.response.status_code"] in ("202", 202)
        [publish] = [s for s in spans if s["name"].startswith(f"publish {prefix}:orders:")]
        assert publish["kind"] == PRODUCER and parent(publish) is server
        assert publish["attrs"]["messaging.system"] == "redis"
        batch = named[f"process {prefix}:orders"]
        assert batch["service"] == "venue-submitter" and batch["kind"] == CONSUMER
        assert parent(batch) is publish
        assert any(link["spanId"] == publish["spanId"] for link in batch.get("links", []))
        assert int(batch["attrs"]["messaging.batch.message_count"]) >= 1
        call = named[SUBMIT]
        assert call["kind"] == CLIENT and parent(call) is batch
        start, end = int(call["startTimeUnixNano"]), int(call["endTimeUnixNano"])
        for name in ENGINE_CHILDREN:
            engine = named[name]
            assert parent(engine) is call, name
            assert start <= int(engine["startTimeUnixNano"]) <= int(engine["endTimeUnixNano"]) \
                <= end, (name, engine, call)
        writer = named[f"process {prefix}:events"]
        assert writer["service"] == "venue-writer" and writer["kind"] == CONSUMER
        assert parent(writer) is batch
        assert any(link["spanId"] == batch["spanId"] for link in writer.get("links", []))
        push = named[f"push {prefix}:events:0"]
        assert push["service"] == "venue-gateway" and push["kind"] == PRODUCER
        assert parent(push) is batch and int(push["attrs"]["venue.ws.sockets"]) >= 1
        orphans = [s["name"] for s in spans
                   if s.get("parentSpanId") and parent(s) is None and s is not server]
        assert orphans == [], orphans
    opened.close()


def test_a_request_without_a_sampled_context_leaves_no_trace_at_ratio_zero(traced_venue,
                                                                           jaeger):
    trace_id = secrets.token_hex(16)
    key = next(iter(traced_venue.keys.values()))
    with httpx.Client(base_url=traced_venue.gateway_url, timeout=10) as client:
        answer = client.post("/v1/orders", headers={
            "Authorization": f"Bearer {key}",
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-00"}, json={
            "symbol": "BTC-USD", "side": "buy", "price": "1.00", "quantity": "0.5"})
    assert answer.status_code == 202
    time.sleep(2)
    assert jaeger.trace(trace_id) is None
    assert os.environ["OTEL_TRACES_SAMPLER_ARG"] == "0"


def test_a_rejected_order_is_recorded_whatever_the_ratio(traced_venue, jaeger):
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    key = next(iter(traced_venue.keys.values()))
    with httpx.Client(base_url=traced_venue.gateway_url, timeout=10) as client:
        answer = client.post("/v1/orders", headers={"Authorization": f"Bearer {key}"}, json={
            "symbol": "BTC-USD", "side": "buy", "price": "1.001", "quantity": "0.5"})
    assert answer.status_code == 422
    deadline = time.monotonic() + 30
    while True:
        spans = spans_of(jaeger.find("venue-gateway", since))
        refused = [s for s in spans if s["attrs"].get("http.response.status_code") in (422, "422")]
        if refused or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert refused, spans
    assert refused[0]["name"] == "POST /v1/orders" and refused[0]["kind"] == SERVER
    assert refused[0]["attrs"]["venue.reject_reason"]


def test_spans_reach_the_backend_over_otlp_http_too(jaeger, monkeypatch):
    monkeypatch.setenv(telemetry.ENDPOINT_ENV, jaeger.otlp_http_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    assert telemetry.setup("venue-test-http")
    try:
        with telemetry.tracer().start_as_current_span("over http") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
    finally:
        telemetry.shutdown()  # exports what is buffered
    wait_for_trace(jaeger, trace_id, {"over http"})
