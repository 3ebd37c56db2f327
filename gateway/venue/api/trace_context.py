"""W3C trace context (traceparent) of an order, carried into its stream entry."""

from __future__ import annotations

import re

from venue.telemetry import new_traceparent

# version-traceid-parentid-flags; a version after 00 may append fields (W3C, "future versions").
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def is_valid_traceparent(value: str) -> bool:
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return False
    version, trace_id, parent_id, _, rest = match.groups()
    return (version != "ff" and not (version == "00" and rest)
            and trace_id != "0" * 32 and parent_id != "0" * 16)


def traceparent_of(header: str | None) -> str:
    """The request's traceparent when it is valid (its flags decide its sampling), else a
    fresh one (sampled at the process's ratio)."""
    if header is not None and is_valid_traceparent(header):
        return header
    return new_traceparent()
