"""The WebSocket frames the feed writes itself (RFC 6455, 5.2): a server's frames are
unmasked; each message is one unfragmented frame."""

from __future__ import annotations

import struct


def text_frame(payload: bytes) -> bytes:
    """A server's unmasked, unfragmented WebSocket text frame (RFC 6455, 5.2): made once
    per message and written to every subscriber as it is."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def close_frame(code: int, reason: str) -> bytes:
    payload = struct.pack("!H", code) + reason.encode()[:123]
    return bytes((0x88, len(payload))) + payload
