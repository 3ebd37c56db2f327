"""The Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from venue.metrics import exposition

router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics of this gateway process",
            response_class=Response,
            responses={200: {"content": {"text/plain": {}},
                             "description": "The Prometheus text exposition format"}})
async def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)
