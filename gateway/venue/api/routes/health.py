"""Liveness and readiness probes.

/readyz is the truth about whether this venue can take and keep orders, not whether a
port answers: Redis and Postgres answer, a writer is persisting (not stopped, not
stuck, not so far behind that every new order has been refused for long), and every
engine partition is reached by its submitters (venue.contract.health).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from venue.contract import health
from venue.api.deps import DbDep, RedisDep, VenueDep
from venue.api.shard_lag import ShardLag
from venue.contract.keys import Keys

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


@router.get("/readyz", summary="The venue takes orders and keeps them", responses={
    503: {"description": "Redis or Postgres does not answer, persistence is stopped or far "
                         "behind, or an engine partition is out of its submitters' reach; "
                         "the body names which"}})
async def readyz(request: Request, redis: RedisDep, db: DbDep, venue: VenueDep) -> JSONResponse:
    problems: list[health.Problem] = []
    checks = dict(await asyncio.gather(
        _check("redis", redis.ping()), _check("postgres", db.fetchval("SELECT 1"))))
    if checks["redis"] == "ok":
        try:
            problems = await asyncio.wait_for(
                health.read_verdict(redis, Keys(venue.name), venue.partitions),
                CHECK_TIMEOUT_S)
        except Exception as error:
            checks["redis"] = f"{type(error).__name__}: {error}".rstrip(": ")
    shard_lag: ShardLag = request.app.state.shard_lag
    refusing = shard_lag.refusing_for_s()
    if refusing > health.STALE_S and shard_lag.venue_refusal is not None:
        problems.append(health.Problem("persistence", (
            f"every new order refused for {refusing:.0f} s: "
            f"{shard_lag.venue_refusal.detail}")))
    for check in ("persistence", "matching"):
        found = [p.detail for p in problems if p.check == check]
        checks[check] = "; ".join(found) if found else "ok"
    if checks["redis"] != "ok":  # what the parts said cannot be read: unknown, not ok
        checks["persistence"] = checks["matching"] = "unknown: redis does not answer"
    ready = all(result == "ok" for result in checks.values())
    return JSONResponse(status_code=200 if ready else 503,
                        content={"status": "ok" if ready else "unavailable", "checks": checks})
