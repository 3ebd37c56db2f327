"""The venue's status conditions (metav1.Condition shape), computed from its children's
real state: pure functions over the live objects the operator watches.

Ready          every part below is ready
EngineReady    every partition's engine StatefulSet has its pod ready on the new revision,
               and its submitters say they reach it (venue.contract.health)
GatewayReady   the gateway Deployment has all its replicas available on the new template
QueueReady     Redis answers (and, when managed, its StatefulSet is ready), submitters run
DatabaseReady  Postgres is ready (managed) or its Secret is there (external); the writer
               runs and says it persists (not interrupted, not stalled)
Scaling        True while the submitter count is changing; the autoscaler's reason
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from venue.contract.health import Problem
from venue_operator.autoscale import Decision
from venue_operator.render.engine import engine_name
from venue_operator.render.gateway import gateway_name
from venue_operator.render.labels import Venue, child_name
from venue_operator.render.secrets import is_managed
from venue_operator.render.submitters import submitter_name
from venue_operator.render.writer import writer_name

READY = "Ready"
ENGINE_READY = "EngineReady"
GATEWAY_READY = "GatewayReady"
QUEUE_READY = "QueueReady"
DATABASE_READY = "DatabaseReady"
SCALING = "Scaling"
PARTS = (ENGINE_READY, GATEWAY_READY, QUEUE_READY, DATABASE_READY)

PHASE_READY = "Ready"
PHASE_PROGRESSING = "Progressing"
PHASE_DEGRADED = "Degraded"
PHASE_INVALID = "Invalid"

Object = dict[str, Any]


@dataclass(frozen=True)
class Observed:
    """What the operator saw of a venue's world, the input of its status."""

    deployments: dict[str, Object]  # by name, the venue's own
    statefulsets: dict[str, Object]
    queue_error: str | None  # None: Redis answered
    database_secret_error: str | None = None  # external Postgres: why its Secret is unusable
    # What stops the venue by what its writer and submitters say (contract.health.verdict);
    # empty when Redis did not answer (QueueReady says that).
    part_problems: tuple[Problem, ...] | list[Problem] = ()


@dataclass(frozen=True)
class Part:
    ready: bool
    reason: str
    message: str
    settling: bool = False  # a rollout is under way (or the object is not there yet)


def condition(type_: str, ready: bool, reason: str, message: str, generation: int,
              now: str, previous: list[Object] | None = None) -> Object:
    status = "True" if ready else "False"
    old = next((c for c in previous or () if c.get("type") == type_), None)
    # lastTransitionTime moves only when the status does.
    since = old["lastTransitionTime"] if old and old.get("status") == status else now
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": since}


def workload_part(kind: str, name: str, obj: Object | None, ready_field: str) -> Part:
    if obj is None:
        return Part(False, "NotCreated", f"{kind} {name} does not exist yet", settling=True)
    wanted = obj.get("spec", {}).get("replicas", 1)
    status = obj.get("status") or {}
    ready = status.get(ready_field, 0) or 0
    updated = status.get("updatedReplicas", 0) or 0
    seen = status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
    rolling = not seen or updated < wanted
    if ready >= wanted and not rolling:
        return Part(True, "Ready", f"{kind} {name}: {ready}/{wanted} ready")
    reason = "RollingOut" if rolling else "NotReady"
    return Part(False, reason, f"{kind} {name}: {ready}/{wanted} ready, {updated} updated",
                settling=rolling)


def deployment_part(name: str, observed: Observed) -> Part:
    return workload_part("Deployment", name, observed.deployments.get(name), "availableReplicas")


def statefulset_part(name: str, observed: Observed) -> Part:
    return workload_part("StatefulSet", name, observed.statefulsets.get(name), "readyReplicas")


def combine(parts: list[Part]) -> Part:
    failing = [p for p in parts if not p.ready]
    if not failing:
        return Part(True, parts[0].reason, "; ".join(p.message for p in parts))
    return Part(False, failing[0].reason, "; ".join(p.message for p in failing),
                settling=any(p.settling for p in failing))


def said_parts(observed: Observed, check: str, reason: str) -> list[Part]:
    return [Part(False, reason, problem.detail) for problem in observed.part_problems
            if problem.check == check]


def engine_part(venue: Venue, observed: Observed) -> Part:
    return combine([statefulset_part(engine_name(venue, p), observed)
                    for p in range(venue["spec"]["engine"]["partitions"])]
                   + said_parts(observed, "matching", "EngineUnreachable"))


def queue_part(venue: Venue, observed: Observed) -> Part:
    parts = []
    if is_managed(venue, "redis"):
        parts.append(statefulset_part(child_name(venue, "redis"), observed))
    if observed.queue_error is not None:
        parts.append(Part(False, "RedisUnreachable", f"Redis: {observed.queue_error}"))
    else:
        parts.append(Part(True, "Ready", "Redis answers"))
    # Submitters may be scaled to zero on purpose (min 0); one that exists must be running.
    submitters = observed.deployments.get(submitter_name(venue))
    if submitters is None or submitters.get("spec", {}).get("replicas", 0) > 0:
        parts.append(deployment_part(submitter_name(venue), observed))
    return combine(parts)


def database_part(venue: Venue, observed: Observed) -> Part:
    if is_managed(venue, "postgres"):
        parts = [statefulset_part(child_name(venue, "postgres"), observed)]
    elif observed.database_secret_error:
        parts = [Part(False, "SecretMissing", observed.database_secret_error)]
    else:
        parts = [Part(True, "External", "external Postgres (its URL Secret is present)")]
    parts.append(deployment_part(writer_name(venue), observed))
    return combine(parts + said_parts(observed, "persistence", "PersistenceStopped"))


def scaling_part(venue: Venue, observed: Observed, decision: Decision | None) -> Part:
    submitters = observed.deployments.get(submitter_name(venue))
    available = ((submitters or {}).get("status") or {}).get("availableReplicas", 0) or 0
    if decision is None:
        return Part(False, "NoDecision", "the autoscaler has not decided yet")
    moving = decision.changed or available != decision.replicas
    message = f"{available} available, {decision.replicas} desired: {decision.message}"
    # "ready" is the condition's status here: True while scaling.
    return Part(moving, decision.reason, message)


def conditions(venue: Venue, observed: Observed, decision: Decision | None,
               now: str) -> tuple[list[Object], str]:
    """(conditions, phase) for the venue's status."""
    generation = venue["metadata"].get("generation", 0)
    previous = (venue.get("status") or {}).get("conditions") or []
    parts = {ENGINE_READY: engine_part(venue, observed),
             GATEWAY_READY: deployment_part(gateway_name(venue), observed),
             QUEUE_READY: queue_part(venue, observed),
             DATABASE_READY: database_part(venue, observed)}
    ready = all(p.ready for p in parts.values())
    if ready:
        overall = Part(True, "AllPartsReady", "engine, gateway, queue and database are ready")
        phase = PHASE_READY
    else:
        failing = [t for t, p in parts.items() if not p.ready]
        overall = Part(False, "PartsNotReady", "not ready: " + ", ".join(failing))
        # Degraded: it was Ready and lost a part that is not being rolled out. A venue
        # still coming up, or rolling out a change, is Progressing.
        was_up = (venue.get("status") or {}).get("phase") in (PHASE_READY, PHASE_DEGRADED)
        settling = any(p.settling for p in parts.values())
        phase = PHASE_DEGRADED if was_up and not settling else PHASE_PROGRESSING
    scaling = scaling_part(venue, observed, decision)
    made = [condition(READY, overall.ready, overall.reason, overall.message, generation, now,
                      previous)]
    made += [condition(t, p.ready, p.reason, p.message, generation, now, previous)
             for t, p in parts.items()]
    made.append(condition(SCALING, scaling.ready, scaling.reason, scaling.message, generation,
                          now, previous))
    return made, phase


def invalid(venue: Venue, message: str, now: str) -> list[Object]:
    """Conditions of a venue whose spec the operator cannot build (beyond the CRD's rules)."""
    generation = venue["metadata"].get("generation", 0)
    previous = (venue.get("status") or {}).get("conditions") or []
    return [condition(READY, False, "InvalidSpec", message, generation, now, previous)]
