"""OpenTelemetry traces for the venue's processes: one home for how a process sets up its
tracer, how an order's trace context is sampled, and how spans that handle several
orders join their traces.

Configured by the standard environment (the operator sets it from spec.telemetry;
`venue up --tracing` sets it for a local Jaeger):
- OTEL_EXPORTER_OTLP_ENDPOINT: where spans go over OTLP. Unset: tracing is off and
  costs a flag check per request.
- OTEL_EXPORTER_OTLP_PROTOCOL (or ..._TRACES_PROTOCOL): `grpc` (the default, port 4317)
  or `http/protobuf` (port 4318; the endpoint is the base URL, /v1/traces is added).
- OTEL_TRACES_SAMPLER_ARG: the share of requests that brought no trace context that are
  traced (default 0.01). A client's traceparent decides for its request (parent-based).
- OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: the process's resource; setup() adds the
  venue, the partition and the pod.

Sampling happens before any span is built: the gateway decides when it makes (or reads)
the traceparent, whose flags then travel with the order through its stream entry, the
engine command and the events, and every later part reads the flags before it builds a
span. Rejected orders and 5xx answers are recorded whatever the ratio (`always=True`).

A span that handles several orders (a submitter's batch, a writer's transaction) is the
child of the first sampled order's context and links to every sampled one, so each
order's trace shows the batch that carried it.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import secrets
import time
from typing import Iterable, Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

# The service names of the venue's processes.
GATEWAY, SUBMITTER, WRITER, OPERATOR = ("venue-gateway", "venue-submitter", "venue-writer",
                                        "venue-operator")
ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
RATIO_ENV = "OTEL_TRACES_SAMPLER_ARG"
PROTOCOL_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_RATIO = 0.01
# A span with this attribute set is recorded whatever the sampling decision.
ALWAYS_ATTRIBUTE = "venue.always_recorded"
MESSAGING_SYSTEM = "redis"  # Redis Streams: a custom value the conventions allow

# Attributes an SRE searches by.
ORDER_ID = "venue.order_id"
CLIENT_ORDER_ID = "venue.client_order_id"

_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None
_ratio = DEFAULT_RATIO


class _VenueSampler(Sampler):
    """Parent-based (the decision made when the trace context was made travels in its
    flags), and always for spans marked ALWAYS_ATTRIBUTE (rejections, 5xx)."""

    def __init__(self) -> None:
        self._parent_based = ParentBased(ALWAYS_ON)

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                      links=None, trace_state=None) -> SamplingResult:
        if attributes and attributes.get(ALWAYS_ATTRIBUTE):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, trace_state)
        return self._parent_based.should_sample(parent_context, trace_id, name, kind,
                                                attributes, links, trace_state)

    def get_description(self) -> str:
        return "VenueSampler(parent-based; always for rejections and 5xx)"


def tracer() -> trace.Tracer | None:
    """The process's tracer; None when tracing is off (check before building spans)."""
    return _tracer


def setup(service: str, *, partition: int | None = None) -> bool:
    """Set up this process's tracing from the environment; True when it is on."""
    global _tracer, _provider, _ratio
    endpoint = os.environ.get(ENDPOINT_ENV)
    if not endpoint or os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "none":
        _tracer = None
        return False
    _ratio = ratio_from_env()
    exporter = _exporter(endpoint)
    attributes = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or service}
    pod = os.environ.get("POD_NAME") or os.environ.get("HOSTNAME")
    if pod:
        attributes["k8s.pod.name"] = pod
    if partition is not None:
        attributes["tradingvenue.partition"] = partition
    provider = TracerProvider(resource=Resource.create(attributes), sampler=_VenueSampler())
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("venue")
    return True


def protocol_from_env() -> str:
    """The OTLP protocol the environment asks for; ValueError naming the variable when it
    is neither of PROTOCOLS."""
    for name in PROTOCOL_ENVS:
        value = os.environ.get(name)
        if value:
            if value not in PROTOCOLS:
                raise ValueError(f"{name}={value!r}: must be one of {', '.join(PROTOCOLS)}")
            return value
    return PROTOCOLS[0]


def _exporter(endpoint: str):
    if protocol_from_env() == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )
        return HttpExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))


def shutdown() -> None:
    """Export what is buffered and stop (a stopping process)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def ratio_from_env() -> float:
    try:
        ratio = float(os.environ.get(RATIO_ENV, DEFAULT_RATIO))
    except ValueError:
        return DEFAULT_RATIO
    return min(1.0, max(0.0, ratio))


# --- trace context: the traceparent string that travels with an order -----------------


# version-traceid-parentid-flags; a version after 00 may append fields (W3C, "future versions").
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def is_valid_traceparent(value: str) -> bool:
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return False
    version, trace_id, parent_id, _, rest = match.groups()
    return (version != "ff" and not (version == "00" and rest)
            and trace_id != "0" * 32 and parent_id != "0" * 16)


def new_traceparent() -> str:
    """A fresh trace context for a request that brought none; sampled (flags 01) at the
    process's ratio when tracing is on, else never."""
    sampled = _tracer is not None and random.random() < _ratio
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-{'01' if sampled else '00'}"


def is_sampled(traceparent: str | bytes | None) -> bool:
    """True when tracing is on here and `traceparent` is a valid context with its sampled
    flag set. The flag is read first; only a sampled one is checked in full (a malformed
    one, whatever brought it, is never traced and never raises)."""
    if _tracer is None or not traceparent or len(traceparent) < 55:
        return False
    if isinstance(traceparent, bytes):
        traceparent = traceparent.decode("ascii", "replace")
    if traceparent[54] not in "13579bdf":  # the flags' last hex digit: bit 0 is "sampled"
        return False
    return is_valid_traceparent(traceparent)


def span_context_of(traceparent: str | bytes) -> SpanContext:
    if isinstance(traceparent, bytes):
        traceparent = traceparent.decode()
    _, trace_id, span_id, flags = traceparent[:55].split("-")
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True,
                       trace_flags=TraceFlags(int(flags, 16)))


def parent_of(traceparent: str | bytes):
    """An OpenTelemetry Context whose current span is the remote `traceparent`."""
    return trace.set_span_in_context(NonRecordingSpan(span_context_of(traceparent)))


def traceparent_of(span: trace.Span) -> str:
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def start_linked(name: str, kind: SpanKind, traceparents: Sequence[str | bytes],
                 attributes: dict | None = None, start_time: int | None = None) -> trace.Span:
    """A span for work on several orders: child of the first sampled context, linked to
    each (see the module's doc)."""
    contexts = [span_context_of(t) for t in traceparents]
    return _tracer.start_span(name, context=trace.set_span_in_context(NonRecordingSpan(
        contexts[0])), kind=kind, links=[Link(c) for c in contexts], attributes=attributes,
        start_time=start_time)


def record_interval(name: str, parent: trace.Span, start_ns: int, end_ns: int,
                    attributes: dict | None = None) -> None:
    """A finished child span of `parent` from start_ns to end_ns (unix ns): time another
    process reported (the engine's batch timing)."""
    span = _tracer.start_span(name, context=trace.set_span_in_context(parent),
                              kind=SpanKind.INTERNAL, attributes=attributes,
                              start_time=start_ns)
    span.end(end_time=end_ns)


def sampled_of(traceparents: Iterable[str | bytes | None]) -> list[str | bytes]:
    return [t for t in traceparents if is_sampled(t)]


# --- logs: JSON lines that lead to their trace ------------------------------------------


def current_ids() -> dict[str, str]:
    """trace_id and span_id of the span current here, if any."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


class TraceIds(logging.Filter):
    """Puts trace_id and span_id on a log record (for a JSON formatter of another's, as
    kopf's, that writes a record's extra attributes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current_ids().items():
            setattr(record, key, value)
        return True


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the trace_id and span_id
    of the span current when it was logged (so a log line leads to its trace)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        line.update(current_ids())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_config(level: str = "INFO") -> dict:
    """logging.config.dictConfig for a part (uvicorn takes it as log_config)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}
    return {"version": 1, "disable_existing_loggers": False,
            "formatters": {"json": {"()": JsonLogFormatter}},
            "handlers": {"stderr": handler},
            "root": {"handlers": ["stderr"], "level": level},
            "loggers": {name: {"handlers": ["stderr"], "level": level, "propagate": False}
                        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}}
