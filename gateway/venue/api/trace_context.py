"""W3C trace context (traceparent) of an order, carried into its stream entry."""

from __future__ import annotations

from venue.telemetry import is_valid_traceparent, new_traceparent

__all__ = ["is_valid_traceparent", "traceparent_of"]


def traceparent_of(header: object) -> str:
    """The request's traceparent when it is valid (its flags decide its sampling), else a
    fresh one (sampled at the process's ratio), as W3C trace context says: whatever a
    client sent (a WebSocket message's may be any JSON value) is never refused for it."""
    if isinstance(header, str) and is_valid_traceparent(header):
        return header
    return new_traceparent()
