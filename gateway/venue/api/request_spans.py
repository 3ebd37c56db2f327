"""The gateway's spans of one order request, built only when its trace is sampled:

    SERVER   "POST /v1/orders" (or the batch route, or "ws new_order")
      PRODUCER "publish <shard stream>": the stream entry carries this span's context, so
               the submitter's batch span (CONSUMER) is its child or links to it.

Unsampled requests (most, at the usual ratio) pay one flag check and carry their
unsampled traceparent on, so no later part builds a span for them either.
"""

from __future__ import annotations

import time

from opentelemetry.trace import SpanKind, Status, StatusCode

from venue import telemetry

CHANNEL_SPAN_NAMES = {"http": "POST /v1/orders", "batch": "POST /v1/orders/batch",
                      "ws": "ws new_order"}


class _Untraced:
    """An unsampled request: its traceparent goes on as it is, and nothing is recorded."""

    __slots__ = ("entry_traceparent",)

    def __init__(self, traceparent: str) -> None:
        self.entry_traceparent = traceparent

    def __enter__(self) -> _Untraced:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def queued(self, **_: object) -> None:
        return None


class _Traced:
    """A sampled request: its SERVER and PRODUCER spans, open while it is queued."""

    def __init__(self, traceparent: str, channel: str, destination: str) -> None:
        tracer = telemetry.tracer()
        self.channel = channel
        name = CHANNEL_SPAN_NAMES.get(channel, f"{channel} order")
        attributes = {"venue.channel": channel}
        if channel in ("http", "batch"):
            route = name.split(" ", 1)[1]
            attributes.update({"http.request.method": "POST", "http.route": route,
                               "url.path": route})
        self.server = tracer.start_span(name, context=telemetry.parent_of(traceparent),
                                        kind=SpanKind.SERVER, attributes=attributes)
        self.producer = tracer.start_span(
            f"publish {destination}",
            context=telemetry.trace.set_span_in_context(self.server), kind=SpanKind.PRODUCER,
            attributes={"messaging.system": telemetry.MESSAGING_SYSTEM,
                        "messaging.operation.type": "publish",
                        "messaging.operation.name": "publish",
                        "messaging.destination.name": destination})
        # The stream entry carries the PRODUCER's context: the submitter's batch joins it.
        self.entry_traceparent = telemetry.traceparent_of(self.producer)

    def __enter__(self) -> _Traced:
        return self

    def __exit__(self, kind, error, _traceback) -> None:
        if error is not None:
            for span in (self.producer, self.server):
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        elif self.channel in ("http", "batch"):
            self.server.set_attribute("http.response.status_code", 202)
        self.producer.end()
        self.server.end()

    def queued(self, *, order_id: int | None = None, client_order_id: str | None = None,
               count: int | None = None, duplicate: bool | None = None) -> None:
        """Say what was queued: the ids an SRE searches by, a batch's size."""
        for span in (self.server, self.producer):
            if order_id is not None:
                span.set_attribute(telemetry.ORDER_ID, str(order_id))
            if client_order_id is not None:
                span.set_attribute(telemetry.CLIENT_ORDER_ID, client_order_id)
        if count is not None:
            self.server.set_attribute("venue.batch.item_count", count)
            self.producer.set_attribute("messaging.batch.message_count", count)
        if duplicate is not None:
            self.server.set_attribute("venue.duplicate", duplicate)


def request_spans(traceparent: str, channel: str, destination: str) -> _Traced | _Untraced:
    """`with request_spans(...) as spans:` around queueing one request's orders to
    `destination`; put `spans.entry_traceparent` in the stream entry."""
    if telemetry.is_sampled(traceparent):
        return _Traced(traceparent, channel, destination)
    return _Untraced(traceparent)


def record_refusal(traceparent: str | None, channel: str, status: int, reason: str,
                   path: str | None = None, method: str = "POST") -> None:
    """A rejected order or a 5xx answer: recorded whatever the sampling ratio."""
    tracer = telemetry.tracer()
    if tracer is None:
        return
    name = f"{method} {path}" if path else CHANNEL_SPAN_NAMES.get(channel, f"{channel} order")
    parent = telemetry.parent_of(traceparent) if traceparent else None
    attributes = {telemetry.ALWAYS_ATTRIBUTE: True, "venue.channel": channel,
                  "http.response.status_code": status, "venue.reject_reason": reason}
    if path:
        attributes.update({"http.request.method": method, "url.path": path})
    span = tracer.start_span(name, context=parent, kind=SpanKind.SERVER,
                             start_time=time.time_ns(), attributes=attributes)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR, reason))
    span.end()
