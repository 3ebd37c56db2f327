"""A WebSocket's two directions, one home for each, for every socket the gateway serves:
what the client sends, as text, and a bounded outbox of what it is sent."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect, status

_CLOSE = object()


async def received_texts(websocket: WebSocket) -> AsyncIterator[str]:
    """The text of each message the client sends (a binary one read as UTF-8), until it
    leaves."""
    while True:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            return
        text = received.get("text")
        if text is None:
            text = (received.get("bytes") or b"").decode("utf-8", "replace")
        yield text


class Outbox:
    """Messages waiting for a socket, sent in order by run(). A socket that lets more than
    `limit` messages, or more than `byte_limit` bytes of them (each `size(item)`), wait is
    a slow consumer: what waits is dropped, it is closed with 1013 and `reason`, and
    `on_overflow` is called; nothing put after that is sent."""

    def __init__(self, websocket: WebSocket, limit: int, byte_limit: int, reason: str,
                 on_overflow: Callable[[], None] = lambda: None,
                 size: Callable[[Any], int] = len) -> None:
        self.websocket = websocket
        self.limit = limit
        self.byte_limit = byte_limit
        self.reason = reason
        self.on_overflow = on_overflow
        self.closing = False
        self._size = size
        self._bytes = 0  # of what waits
        self._items: deque[Any] = deque()
        self._ready = asyncio.Event()

    def put(self, item: Any) -> None:
        if self.closing:
            return
        size = self._size(item)
        if len(self._items) >= self.limit or self._bytes + size > self.byte_limit:
            self.closing = True
            self._items.clear()
            self._items.append(_CLOSE)
            self.on_overflow()
        else:
            self._items.append(item)
            self._bytes += size
        self._ready.set()

    async def run(self, text: Callable[[Any], str] = str,
                  sent: Callable[[Any], None] = lambda _: None) -> None:
        """Sends each item as text(item), then calls sent(item); until closed."""
        websocket, items = self.websocket, self._items
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                while items:
                    item = items.popleft()
                    if item is _CLOSE:
                        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER,
                                              reason=self.reason)
                        return
                    self._bytes -= self._size(item)
                    await websocket.send_text(text(item))
                    sent(item)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # closed under us: the receiving side ends the session
