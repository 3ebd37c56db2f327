"""Request latency into venue_http_request_duration_seconds, by method and handler.

A plain ASGI wrapper rather than Starlette's BaseHTTPMiddleware, which runs every
request through an extra task and stream: on the order path that costs more than the
measurement itself.
"""

from __future__ import annotations

import time

from prometheus_client.metrics import Histogram
from starlette.types import ASGIApp, Receive, Scope, Send

from venue.metrics import REQUEST_LATENCY

_UNMATCHED = "unmatched"


class RequestTiming:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # (method, handler) -> histogram child: labels() takes a lock per call.
        self._children: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            # The router has put the matched route into the scope by now. Its endpoint's
            # name, not the path, keeps the label set small (and an included router's
            # route does not carry the prefix).
            route = scope.get("route")
            key = (scope["method"], getattr(route, "name", None) or _UNMATCHED)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = REQUEST_LATENCY.labels(*key)
            child.observe(time.perf_counter() - started)
