"""The baseline of `venue bench e2e --baseline`: a FastAPI endpoint that does nothing.

Served by uvicorn exactly as the gateway is (uvloop, httptools, same workers), so the
ratio of the two says what the venue's own work costs per request.
"""

from fastapi import FastAPI
from fastapi.responses import Response

app = FastAPI()


@app.post("/bare")
async def bare() -> Response:
    return Response(b"{}", media_type="application/json")
