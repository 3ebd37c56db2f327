"""Request bodies past the gateway's limit are refused with 413 before they are read.

Every route's body is an order, a replace or a batch of at most `batch_max_orders`
orders: a few hundred bytes an order. Without a limit a client could send hundreds of
megabytes that the gateway would read, decode and answer in full (an error echoes what
it refuses). A body larger than the limit, announced (Content-Length) or sent in chunks,
is answered 413 at once, neither decoded nor kept (a client that sent `Expect:
100-continue` is not invited to send it). The connection stays open: the server drops
what comes of the body after the answer, so a client that sends its whole body before
reading reads the 413 (a connection closed on unread bytes would be reset, and the
client get an error instead), until the body's deadline (venue.api.http_protocol)
closes it. FastAPI's own `max_body_size` answers in plain text. Counted in
venue_http_refused.
"""

from __future__ import annotations

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from venue.metrics import HTTP_REFUSED

# Bytes of body an order may take in a batch (an order written out in full, every field
# at its longest, is under 400), and the least limit of any body.
BODY_BYTES_PER_ORDER = 1024
MIN_BODY_LIMIT = 1 << 20
REASON = "body_too_large"
_CONTENT_LENGTH = b"content-length"


def body_limit(batch_max_orders: int) -> int:
    """The most bytes a request body may have: room for the largest batch."""
    return max(MIN_BODY_LIMIT, batch_max_orders * BODY_BYTES_PER_ORDER)


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == _CONTENT_LENGTH:
                # The server reads no more than announced, and refuses a malformed one.
                if value.isdigit() and int(value) > self.limit:
                    await self._refuse(send)
                else:
                    await self.app(scope, receive, send)
                return
        # No length announced (chunked): the body is read here, as far as the limit.
        body, complete = await read_body(receive, self.limit)
        if len(body) > self.limit:
            await self._refuse(send)
            return
        await self.app(scope, replayed(body, complete, receive), send)

    async def _refuse(self, send: Send) -> None:
        HTTP_REFUSED.labels(REASON).inc()
        body = msgspec.json.encode({
            "detail": f"the request body is over this gateway's limit of {self.limit} bytes",
            "reason": REASON, "limit": self.limit})
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body, and whether it is all there: not when the client left, nor
    once past `limit` bytes (then what was read so far)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def replayed(body: bytes, complete: bool, receive: Receive) -> Receive:
    """`receive` for what comes next: the body read so far, then whatever else comes."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": not complete}

    return replay
