"""The kopf layer: which event does what. Each handler is short; the work is in
reconcile (children), autoscale (submitters), conditions (status) and queue_depth (Redis).

    kopf run -m venue_operator.handlers --all-namespaces     (or: python -m venue_operator)
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import kopf
from redis import Redis
from redis.exceptions import RedisError
from venue import metrics, telemetry
from venue.contract.lag import LagEstimator

from venue_operator import FIELD_MANAGER, GROUP, PLURAL, VERSION, kube
from venue_operator.autoscale import (
    PAUSE_ANNOTATION,
    QUEUE_UNREACHABLE,
    Decision,
    History,
    Policy,
    decide,
)
from venue_operator.conditions import PHASE_INVALID, Observed, conditions, invalid
from venue_operator.queue_depth import Reading, connect, read_venue
from venue_operator.reconcile import (
    Action,
    apply_children,
    call,
    ensure_secrets,
    invalid_spec,
    owned,
    prune,
    restore,
    stamp_secrets,
    submitter_replicas,
)
from venue_operator.render import submitters
from venue_operator.render.engine import engine_endpoints
from venue_operator.render.gateway import gateway_endpoint
from venue_operator.render.labels import MANAGED_BY_LABEL, VENUE_LABEL
from venue_operator.render.secrets import (
    POSTGRES_PORT,
    REDIS_PORT,
    is_managed,
    postgres_host,
    redis_host,
    url_ref,
)
from venue_operator.settings import OperatorSettings

SETTINGS = OperatorSettings()
OWNED = {MANAGED_BY_LABEL: FIELD_MANAGER, VENUE_LABEL: kopf.PRESENT}
# (group, version, plural, kind) of every kind of child.
CHILDREN = (("apps", "v1", "deployments", "Deployment"),
            ("apps", "v1", "statefulsets", "StatefulSet"),
            ("", "v1", "services", "Service"),
            ("", "v1", "configmaps", "ConfigMap"),
            ("", "v1", "secrets", "Secret"),
            ("", "v1", "serviceaccounts", "ServiceAccount"),
            ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
            ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"))


@dataclass
class Scaling:
    """The autoscaler's memory of one venue (lost on restart, on purpose: a fresh operator
    watches a whole stabilization window before it scales anything down)."""

    history: History = field(default_factory=History)
    decision: Decision | None = None
    redis_url: str | None = None
    redis: Redis | None = None
    lag: LagEstimator | None = None  # its samples of the venue's shards


# --- startup ---------------------------------------------------------------------------


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger,
              **_: Any) -> None:
    # kopf's bookkeeping lives in annotations under our prefix; status stays ours.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=GROUP, v1=False)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration", v1=False)
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # One operator replica (the chart's Deployment uses Recreate): no peering objects.
    settings.peering.standalone = True
    # Our own Events say what was done; kopf's per-handler chatter stays in the log.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 8
    memo.kube = kube.connect()
    memo.scaling = {}  # (namespace, name) -> Scaling; shared by every venue's memo copy
    telemetry.setup(telemetry.OPERATOR)
    if SETTINGS.metrics_port:
        metrics.serve(SETTINGS.metrics_port)
    if SETTINGS.namespace:
        logger.info("managed Redis admits the operator's pods of namespace %s",
                    SETTINGS.namespace)
    else:
        logger.warning("not in a pod (no service account namespace, no "
                       "TV_OPERATOR_NAMESPACE): managed Redis admits no operator pod")


@kopf.on.cleanup()
def flush_traces(**_: Any) -> None:
    telemetry.shutdown()


@contextmanager
def _traced(what: str, namespace: str, name: str, **attributes: Any) -> Iterator[Any]:
    """A span for one reconcile or autoscaler decision (None when tracing is off)."""
    tracer = telemetry.tracer()
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span(f"{what} {namespace}/{name}", attributes={
            "k8s.namespace.name": namespace, "tradingvenue.venue": name,
            **attributes}) as span:
        yield span


# --- indexes: the operator's cached view of venues and their children --------------------


def _snapshot(body: kopf.Body, kind: str) -> dict[str, Any]:
    # A detached copy: the index keeps it after the event that carried it is gone.
    obj = json.loads(json.dumps(dict(body)))
    obj.setdefault("kind", kind)
    return obj


@kopf.index(GROUP, VERSION, PLURAL)
def venues(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict:
    return {(namespace, name): _snapshot(body, "TradingVenue")}


def _index_children(kind: str):
    def index(namespace: str, labels: dict, body: kopf.Body, **_: Any) -> dict:
        return {(namespace, labels[VENUE_LABEL]): _snapshot(body, kind)}
    return index


for _group, _version, _plural, _kind in CHILDREN:
    kopf.index(_group, _version, _plural, labels=OWNED, id=f"owned_{_plural}")(
        _index_children(_kind))


def live_children(indexes: dict[str, Any], namespace: str, name: str) -> dict[tuple, dict]:
    live = {}
    for _, _, plural, _ in CHILDREN:
        for obj in indexes[f"owned_{plural}"].get((namespace, name), []):
            live[(obj["kind"], obj["metadata"]["name"])] = obj
    return live


def _indexes(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k.startswith("owned_")}


# --- the venue: reconcile on create, on update, and when the operator starts -------------


def _event(body: Any, reason: str, message: str, warning: bool = False) -> None:
    # kopf.event, not kopf.info: posting.level keeps kopf's own chatter out, not ours.
    kopf.event(body, type="Warning" if warning else "Normal", reason=reason, message=message)


def _post(body: Any, actions: list[Action]) -> None:
    for action in actions:
        _event(body, action.verb, action.message)


def _scaling(memo: kopf.Memo, namespace: str, name: str) -> Scaling:
    return memo.scaling.setdefault((namespace, name), Scaling())


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def venue_changed(body: kopf.Body, meta: kopf.Meta, namespace: str, name: str,
                  patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger,
                  **kwargs: Any) -> None:
    venue = _snapshot(body, "TradingVenue")
    problem = invalid_spec(venue)
    if problem:
        patch.status["phase"] = PHASE_INVALID
        patch.status["conditions"] = invalid(venue, problem, _now())
        _event(body, "InvalidSpec", problem, warning=True)
        raise kopf.PermanentError(f"the venue cannot be built: {problem}")
    decided = _scaling(memo, namespace, name).decision
    replicas = submitter_replicas(venue, decided.replicas if decided else None)
    with _traced("reconcile", namespace, name,
                 **{"venue.generation": meta.get("generation") or 0}) as span, \
            metrics.OPERATOR_RECONCILE.time():
        actions = ensure_secrets(memo.kube, venue)
        actions += apply_children(memo.kube, venue, replicas,
                                  live_children(_indexes(kwargs), namespace, name),
                                  operator_namespace=SETTINGS.namespace)
        actions += prune(memo.kube, venue)
        if span is not None:
            span.set_attribute("venue.actions", [a.message for a in actions])
            span.set_attribute("venue.submitters", replicas)
        logger.info("reconciled: %s", "; ".join(a.message for a in actions) or "no change")
    _post(body, actions)
    patch.status["observedGeneration"] = meta.get("generation")
    patch.status["endpoints"] = _endpoints(venue)


def _endpoints(venue: dict) -> dict[str, Any]:
    endpoints: dict[str, Any] = {"gateway": gateway_endpoint(venue),
                                 "engines": engine_endpoints(venue)}
    if is_managed(venue, "redis"):
        endpoints["redis"] = f"{redis_host(venue)}:{REDIS_PORT}"
    if is_managed(venue, "postgres"):
        endpoints["postgres"] = f"{postgres_host(venue)}:{POSTGRES_PORT}"
    return endpoints


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def venue_deleted(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    """The children go by garbage collection (owner references); only our memory is ours."""
    scaling = memo.scaling.pop((namespace, name), None)
    if scaling is not None and scaling.redis is not None:
        scaling.redis.close()


# --- children: put back what was edited or deleted by hand -------------------------------


def child_changed(event: dict, body: kopf.Body, namespace: str, labels: dict,
                  memo: kopf.Memo, venues: kopf.Index, **kwargs: Any) -> None:
    name = labels[VENUE_LABEL]
    venue = next(iter(venues.get((namespace, name), [])), None)
    if venue is None or venue["metadata"].get("deletionTimestamp"):
        return
    deleted = event.get("type") == "DELETED"
    if deleted:
        # The cache may lag a cascade: ask the API whether the venue is really still there.
        current = call("get venue", memo.kube.get, f"{GROUP}/{VERSION}", "TradingVenue",
                       namespace, name)
        if current is None or current["metadata"].get("deletionTimestamp"):
            return
        venue = current
    if invalid_spec(venue):
        return
    decided = _scaling(memo, namespace, name).decision
    replicas = submitter_replicas(venue, decided.replicas if decided else None)
    if body.get("kind") == "Secret" and not deleted:
        # A Secret's new values (a rotated password): roll the pods that read them.
        _post(venue, apply_children(memo.kube, venue, replicas,
                                    live_children(_indexes(kwargs), namespace, name),
                                    operator_namespace=SETTINGS.namespace))
        return
    action = restore(memo.kube, venue, replicas, _snapshot(body, body.get("kind", "")), deleted,
                     operator_namespace=SETTINGS.namespace)
    if action is not None:
        _event(venue, action.verb,
               f"{action.message} (it was {'deleted' if deleted else 'changed'})")


for _group, _version, _plural, _kind in CHILDREN:
    kopf.on.event(_group, _version, _plural, labels=OWNED, id=f"restore_{_plural}")(
        child_changed)


# --- the tick: queue depth -> autoscaler -> submitters; status from the children ---------


@kopf.timer(GROUP, VERSION, PLURAL, interval=SETTINGS.tick_interval_s)
def venue_tick(body: kopf.Body, namespace: str, name: str, patch: kopf.Patch,
               memo: kopf.Memo, logger: logging.Logger, **kwargs: Any) -> None:
    venue = _snapshot(body, "TradingVenue")
    if invalid_spec(venue):
        return
    scaling = _scaling(memo, namespace, name)
    reading, queue_error = _read_redis(memo.kube, venue, scaling)
    depth = reading.depth if reading is not None else None
    current = submitter_replicas(venue, scaling.decision.replicas if scaling.decision else None)
    policy = Policy.from_spec(venue["spec"]["submitters"],
                              up_period_s=SETTINGS.scale_up_period_s,
                              down_period_s=SETTINGS.scale_down_period_s)
    paused = (body.metadata.annotations.get(PAUSE_ANNOTATION) or "").lower() == "true"
    decision = decide(time.monotonic(), current, depth, policy, scaling.history, paused)
    scaling.history = decision.history
    if decision.changed:
        deployment = stamp_secrets(memo.kube, venue, owned(
            venue, submitters.submitter_deployment(venue, decision.replicas)))
        call("scale submitters", memo.kube.apply, deployment)
    if decision.changed or _reason_changed(scaling.decision, decision):
        _event(body, decision.reason, decision.message,
               warning=decision.reason == QUEUE_UNREACHABLE)
        logger.info("submitters: %s", decision.message)
        metrics.OPERATOR_AUTOSCALE.labels(reason=decision.reason).inc()
        with _traced("autoscale", namespace, name, **{
                "venue.queue_depth": depth if depth is not None else -1,
                "venue.submitters.from": current, "venue.submitters.to": decision.replicas,
                "venue.autoscale.reason": decision.reason,
                "venue.autoscale.message": decision.message}):
            pass
    scaling.decision = decision
    _patch_status(venue, patch, decision, reading,
                  _observe(memo.kube, venue, _indexes(kwargs), queue_error, reading))


def _reason_changed(before: Decision | None, now: Decision) -> bool:
    return before is None or before.reason != now.reason


def _read_redis(api: kube.Kube, venue: dict, scaling: Scaling
                ) -> tuple[Reading | None, str | None]:
    ref = url_ref(venue, "redis")
    namespace = venue["metadata"]["namespace"]
    try:
        url = api.secret_value(namespace, ref["name"], ref["key"])
    except Exception as error:  # noqa: BLE001 - any failure here means "depth unknown"
        return None, f"cannot read Secret {ref['name']}: {error}"
    if url is None:
        return None, f"Secret {ref['name']} has no key {ref['key']!r}"
    if url != scaling.redis_url or scaling.redis is None:
        if scaling.redis is not None:
            scaling.redis.close()
        scaling.redis_url, scaling.redis = url, connect(url)
    shards = range(venue["spec"]["shards"])
    if scaling.lag is None or scaling.lag.shards != shards:
        scaling.lag = LagEstimator(shards)
    try:
        return read_venue(scaling.redis, venue["metadata"]["name"],
                          venue["spec"]["engine"]["partitions"], scaling.lag), None
    except (RedisError, OSError) as error:
        return None, str(error) or type(error).__name__


def _observe(api: kube.Kube, venue: dict, indexes: dict, queue_error: str | None,
             reading: Reading | None) -> Observed:
    namespace, name = venue["metadata"]["namespace"], venue["metadata"]["name"]
    live = live_children(indexes, namespace, name)
    database_error = None
    if not is_managed(venue, "postgres"):
        ref = url_ref(venue, "postgres")
        try:
            if api.secret_value(namespace, ref["name"], ref["key"]) is None:
                database_error = f"Secret {ref['name']} (key {ref['key']!r}) is missing"
        except Exception as error:  # noqa: BLE001
            database_error = f"cannot read Secret {ref['name']}: {error}"
    return Observed(
        deployments={n: o for (k, n), o in live.items() if k == "Deployment"},
        statefulsets={n: o for (k, n), o in live.items() if k == "StatefulSet"},
        queue_error=queue_error, database_secret_error=database_error,
        part_problems=reading.problems if reading is not None else [])


def _patch_status(venue: dict, patch: kopf.Patch, decision: Decision,
                  reading: Reading | None, observed: Observed) -> None:
    status = venue.get("status") or {}
    made, phase = conditions(venue, observed, decision, _now())
    deployment = observed.deployments.get(submitters.submitter_name(venue)) or {}
    replicas = {"current": (deployment.get("status") or {}).get("replicas", 0),
                "desired": decision.replicas, "reason": decision.reason,
                "message": decision.message}
    last_scaled = _now() if decision.changed else (status.get("submitters") or {}).get(
        "lastScaleTime")
    if last_scaled:
        replicas["lastScaleTime"] = last_scaled
    wanted = {"conditions": made, "phase": phase, "submitters": replicas}
    if reading is not None:
        wanted["queueDepth"] = reading.depth
        wanted["deadLetters"] = reading.dead_letters
    for key, value in wanted.items():
        if status.get(key) != value:
            patch.status[key] = value


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- liveness ----------------------------------------------------------------------------


@kopf.on.probe(id="venues")
def venues_watched(memo: kopf.Memo, **_: Any) -> int:
    """Reported on the liveness endpoint: how many venues the autoscaler has seen."""
    return len(memo.scaling)
