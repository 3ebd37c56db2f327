"""venue.telemetry's sampling decisions: made from the trace context's flags before any
span is built, never raising on a malformed context."""

from __future__ import annotations

import pytest

from venue import telemetry

SAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def tracing(monkeypatch):
    def setup(ratio: str) -> None:
        # Nothing is exported: no span is ended while this endpoint is set.
        monkeypatch.setenv(telemetry.ENDPOINT_ENV, "http://127.0.0.1:9")
        monkeypatch.setenv(telemetry.RATIO_ENV, ratio)
        assert telemetry.setup("test")
    yield setup
    telemetry.shutdown()


def test_nothing_is_sampled_while_tracing_is_off():
    telemetry.shutdown()
    assert not telemetry.is_sampled(SAMPLED)
    assert telemetry.new_traceparent().endswith("-00")


@pytest.mark.parametrize("context", [
    SAMPLED, SAMPLED.encode(), SAMPLED[:-2] + "03"])
def test_a_valid_context_with_its_sampled_flag_is_sampled(tracing, context):
    tracing("0")
    assert telemetry.is_sampled(context)


@pytest.mark.parametrize("context", [
    SAMPLED[:-2] + "00", SAMPLED[:-2] + "02", "zz" + SAMPLED[2:], SAMPLED[:20],
    "00-" + "0" * 32 + "-00f067aa0ba902b7-01", b"\xff" * 55, "", None])
def test_anything_else_is_not_and_never_raises(tracing, context):
    tracing("1")
    assert not telemetry.is_sampled(context)


def test_a_fresh_context_is_sampled_at_the_ratio(tracing):
    tracing("0")
    assert all(telemetry.new_traceparent().endswith("-00") for _ in range(200))
    tracing("1")
    fresh = [telemetry.new_traceparent() for _ in range(200)]
    assert all(telemetry.is_valid_traceparent(t) and t.endswith("-01") for t in fresh)
    assert len(set(fresh)) == 200


def test_an_unknown_otlp_protocol_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv(telemetry.ENDPOINT_ENV, "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL='http/json'"):
        telemetry.setup("venue-test")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")  # the specific one wins
    assert telemetry.protocol_from_env() == "grpc"
