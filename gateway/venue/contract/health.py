"""What the parts behind the gateway say of their own health, and the verdict on it.

A port that answers proves little: a writer can be up and stuck, a submitter up and
cut off from its engine. So each says how it is, every HEARTBEAT_S, in one field of the
venue's health hash (Keys.health), as JSON {"at": unix ms, "ok": bool, "detail": text,
...}:

- `writer:<instance>`: its loop is running (ok) or interrupted (the error), and for how
  long persistence has not moved while engine events await it (`stalledS`);
- `engine:<partition>:<instance>`: a submitter reaches that engine partition, or not.

verdict() reads them, for the gateway's /readyz and the operator's conditions alike:
persistence is down when no writer has reported for STALE_S, the newest says it is
interrupted, or persistence has not moved for STALL_S while behind; matching is down
for a partition when no submitter reported on it for STALE_S or one that did cannot
reach it.
"""

from __future__ import annotations

import json
import time
from typing import NamedTuple

from redis.asyncio import Redis

from venue.contract.keys import Keys

HEARTBEAT_S = 1.0
STALE_S = 10.0  # a part silent this long is taken for gone
STALL_S = 10.0  # persistence not moving this long, while behind, is stopped
FORGET_S = 300.0  # fields this old (parts long gone) are dropped by the next of their kind

WRITER = "writer"
ENGINE = "engine"


class Problem(NamedTuple):
    check: str  # persistence or matching
    detail: str


def writer_field(instance: str) -> str:
    return f"{WRITER}:{instance}"


def engine_field(partition: int, instance: str) -> str:
    return f"{ENGINE}:{partition}:{instance}"


def now_ms() -> int:
    return int(time.time() * 1000)


async def report(redis: Redis, keys: Keys, field: str, ok: bool, detail: str = "",
                 **extra: float) -> None:
    """Say how this part is (one HSET)."""
    await redis.hset(keys.health, field, json.dumps(
        {"at": now_ms(), "ok": ok, "detail": detail, **extra}))


async def forget_old(redis: Redis, keys: Keys, prefix: str) -> None:
    """Drop fields of `prefix` no part has written for FORGET_S (instances gone)."""
    fields = await redis.hgetall(keys.health)
    old = [name for name, value in fields.items()
           if name.decode().startswith(prefix) and _age_s(_parse(value), now_ms()) > FORGET_S]
    if old:
        await redis.hdel(keys.health, *old)


def _parse(value: bytes) -> dict:
    try:
        parsed = json.loads(value)
        return parsed if isinstance(parsed, dict) else {}
    except ValueError:
        return {}


def _age_s(state: dict, at_ms: int) -> float:
    return (at_ms - int(state.get("at", 0))) / 1000


def verdict(fields: dict[bytes, bytes] | dict[str, str], partitions: int,
            at_ms: int | None = None) -> list[Problem]:
    """What stops the venue, from HGETALL of the health hash; empty when nothing does."""
    at_ms = now_ms() if at_ms is None else at_ms
    writers: list[dict] = []
    engines: dict[int, list[tuple[str, dict]]] = {p: [] for p in range(partitions)}
    for name, value in fields.items():
        kind, _, rest = (name.decode() if isinstance(name, bytes) else name).partition(":")
        state = _parse(value)
        if kind == WRITER:
            writers.append(state)
        elif kind == ENGINE:
            partition, _, instance = rest.partition(":")
            if partition.isdigit() and int(partition) in engines:
                engines[int(partition)].append((instance, state))
    problems = []
    fresh = [w for w in writers if _age_s(w, at_ms) <= STALE_S]
    if not fresh:
        problems.append(Problem("persistence", f"no writer has reported for {STALE_S:.0f} s "
                                               "(stopped, or restarting)"))
    else:
        newest = max(fresh, key=lambda w: int(w.get("at", 0)))
        if not newest.get("ok"):
            problems.append(Problem("persistence", f"writer interrupted: {newest.get('detail')}"))
        elif float(newest.get("stalledS", 0)) > STALL_S:
            problems.append(Problem("persistence", (
                f"persistence has not moved for {float(newest['stalledS']):.0f} s while engine "
                "events await it")))
    for partition, reports in engines.items():
        live = [(instance, state) for instance, state in reports
                if _age_s(state, at_ms) <= STALE_S]
        if not live:
            problems.append(Problem("matching", (
                f"no submitter has reported on engine partition {partition} for "
                f"{STALE_S:.0f} s")))
        for instance, state in live:
            if not state.get("ok"):
                problems.append(Problem("matching", (
                    f"submitter {instance} cannot reach engine partition {partition}: "
                    f"{state.get('detail')}")))
    return problems


async def read_verdict(redis: Redis, keys: Keys, partitions: int) -> list[Problem]:
    return verdict(await redis.hgetall(keys.health), partitions)
