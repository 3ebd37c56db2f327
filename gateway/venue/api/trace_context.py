"""W3C trace context (traceparent) of an order, carried into its stream entry."""

from __future__ import annotations

from venue.telemetry import is_valid_traceparent, new_traceparent

__all__ = ["is_valid_traceparent", "traceparent_of"]


def traceparent_of(header: str | None) -> str:
    """The request's traceparent when it is valid (its flags decide its sampling), else a
    fresh one (sampled at the process's ratio)."""
    if header is not None and is_valid_traceparent(header):
        return header
    return new_traceparent()
