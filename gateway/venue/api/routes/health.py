"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from venue.api.deps import DbDep, RedisDep

router = APIRouter(tags=["health"])

# A probe that hangs is a failed probe; answer well inside the kubelet's timeout.
CHECK_TIMEOUT_S = 2.0


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(name: str, probe: Awaitable[object]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
    except Exception as error:  # any failure means not ready; the reason goes in the body
        return name, f"{type(error).__name__}: {error}".rstrip(": ")
    return name, "ok"


@router.get("/readyz", summary="Redis and Postgres answer", responses={
    503: {"description": "Redis or Postgres does not answer; the body names which"}})
async def readyz(redis: RedisDep, db: DbDep) -> JSONResponse:
    checks = dict(await asyncio.gather(_check("redis", redis.ping()),
                                       _check("postgres", db.fetchval("SELECT 1"))))
    ready = all(result == "ok" for result in checks.values())
    return JSONResponse(status_code=200 if ready else 503,
                        content={"status": "ok" if ready else "unavailable", "checks": checks})
