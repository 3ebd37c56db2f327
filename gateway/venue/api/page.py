"""The venue page (gateway/venue/page), built by `make page` into its dist/, served at the
gateway's root: one origin for the page, its REST calls and its /v1/market socket.

A gateway whose page is not built still starts; `/` then says how to build it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, status
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

PAGE_DIST = Path(__file__).resolve().parent.parent / "page" / "dist"

NOT_BUILT = """\
The venue page is not built.

Build it with `make page` at the top of the repository (npm ci and vite build in
gateway/venue/page; needs Node.js and npm), then start the gateway again.
The API is here all the same: /docs, /v1/...
"""


def mount_page(app: FastAPI, dist: Path = PAGE_DIST) -> None:
    """Serve the page at `/` and its built assets under `/assets/`: two exact routes, so
    every other path keeps its own 404 and 405 answers."""
    index = dist / "index.html"
    if index.is_file():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="page-assets")

        async def page() -> FileResponse:
            return FileResponse(index, media_type="text/html")

        app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
        return

    async def page_not_built() -> PlainTextResponse:
        return PlainTextResponse(NOT_BUILT, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)

    app.add_api_route("/", page_not_built, methods=["GET"], include_in_schema=False)
