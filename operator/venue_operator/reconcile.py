"""Reconciling a venue: render its children, apply what differs, create its Secrets once,
remove what it no longer needs, and restore a child edited or deleted by hand.

This is the one place that turns render output into API calls. It returns what it did
(`Action`s) so the kopf layer can post them as Events.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from venue_operator import render
from venue_operator.kube import Kube
from venue_operator.render import secrets
from venue_operator.render.configmap import venue_config
from venue_operator.render.gateway import trusted_proxies
from venue_operator.render.labels import SECRETS_CHECKSUM_ANNOTATION, Venue, child_name

Object = dict[str, Any]

# Children that exist only while their part is managed: removed when it turns external.
_MANAGED_ONLY = (("apps/v1", "StatefulSet"), ("v1", "Service"),
                 ("networking.k8s.io/v1", "NetworkPolicy"), ("v1", "ServiceAccount"))


@dataclass(frozen=True)
class Action:
    verb: str  # Created, Updated, Restored, Removed
    kind: str
    name: str

    @property
    def message(self) -> str:
        return f"{self.verb} {self.kind} {self.name}"


def invalid_spec(venue: Venue) -> str | None:
    """Why the operator cannot build this venue, or None. The CRD rejects most mistakes;
    this is what its CEL cannot check (price bands on the tick grid, min above max, an
    address of a trusted proxy that only looks like one)."""
    try:
        venue_config(venue)
    except ValidationError as error:
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}"
                         for e in error.errors())
    try:
        trusted_proxies(venue)
    except ValueError as error:
        return str(error)
    return None


def key(obj: Object) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def drifted(want: Any, live: Any) -> bool:
    """True when `live` lacks or differs in any field `want` sets (extra fields in `live`,
    such as API server defaults, are not drift)."""
    if isinstance(want, dict):
        return not isinstance(live, dict) or any(
            k not in live or drifted(v, live[k]) for k, v in want.items())
    if isinstance(want, list):
        return (not isinstance(live, list) or len(want) != len(live)
                or any(drifted(w, v) for w, v in zip(want, live)))
    return want != live


def submitter_replicas(venue: Venue, decided: int | None) -> int:
    """The autoscaler's last decision (in memory), else the one recorded in status, else
    min; always within [min, max]."""
    spec = venue["spec"]["submitters"]
    if decided is None:
        decided = ((venue.get("status") or {}).get("submitters") or {}).get("desired")
    if decided is None:
        decided = spec["min"]
    return max(spec["min"], min(spec["max"], decided))


def owned(venue: Venue, manifest: Object) -> Object:
    kopf.adopt(manifest, owner=venue)
    return manifest


def call(what: str, fn, *args):
    """Run an API call; classify its failure for kopf's retries."""
    try:
        return fn(*args)
    except ApiException as error:
        if error.status in (400, 403, 422):
            # Our manifest or our rights are wrong: retrying the same will not help.
            raise kopf.PermanentError(f"{what}: {error.status} {error.reason}: "
                                      f"{_api_message(error)}") from error
        raise kopf.TemporaryError(f"{what}: {error.status} {error.reason}", delay=5) from error
    except OSError as error:
        raise kopf.TemporaryError(f"{what}: {error}", delay=5) from error


def _api_message(error: ApiException) -> str:
    try:
        return json.loads(error.body).get("message", "")
    except (TypeError, ValueError):
        return str(error.body)


def secret_refs(manifest: Object) -> list[tuple[str, str]]:
    """(Secret, key) pairs the pod template of a Deployment or StatefulSet reads."""
    pod = ((manifest.get("spec") or {}).get("template") or {}).get("spec") or {}
    refs = set()
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        for env in container.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
    return sorted(refs)


def stamp_secrets(kube: Kube, venue: Venue, manifest: Object) -> Object:
    """Put on the pod template a checksum of the Secret values it reads, so that changing
    one (rotating the Redis password, say) rolls exactly the pods that use it."""
    refs = secret_refs(manifest)
    if not refs:
        return manifest
    namespace = venue["metadata"]["namespace"]
    digest = hashlib.sha256()
    for name, item in refs:
        value = call(f"read Secret {name}", kube.secret_value, namespace, name, item)
        digest.update(json.dumps([name, item, value]).encode())
    template = manifest["spec"]["template"]
    template.setdefault("metadata", {}).setdefault("annotations", {})[
        SECRETS_CHECKSUM_ANNOTATION] = digest.hexdigest()[:32]
    return manifest


def children(kube: Kube, venue: Venue, replicas: int,
             operator_namespace: str | None = None) -> list[Object]:
    """What the venue should have, owned by it, pod templates stamped with their Secrets.
    `operator_namespace`: where the operator's pods run (None: outside the cluster)."""
    return [stamp_secrets(kube, venue, owned(venue, manifest))
            for manifest in render.children(venue, replicas, operator_namespace)]


def ensure_secrets(kube: Kube, venue: Venue) -> list[Action]:
    made = []
    for secret in secrets.generated_secrets(venue):
        if call(f"create Secret {secret['metadata']['name']}", kube.create, owned(venue, secret)):
            made.append(Action("Created", "Secret", secret["metadata"]["name"]))
    return made


def apply_children(kube: Kube, venue: Venue, replicas: int,
                   live: dict[tuple[str, str], Object], *,
                   operator_namespace: str | None) -> list[Action]:
    """Apply every rendered child that is missing or differs from `live` (the operator's
    cached view; a stale view costs at most a no-op apply)."""
    actions = []
    for manifest in children(kube, venue, replicas, operator_namespace):
        current = live.get(key(manifest))
        if current is not None and not drifted(manifest, current):
            continue
        call(f"apply {manifest['kind']} {manifest['metadata']['name']}", kube.apply, manifest)
        actions.append(Action("Updated" if current is not None else "Created", *key(manifest)))
    return actions


def prune(kube: Kube, venue: Venue) -> list[Action]:
    """Remove the managed Redis / Postgres parts of a venue that now uses external ones
    (their volumes stay, per the claim retention policy)."""
    removed = []
    ns = venue["metadata"]["namespace"]
    for part in ("redis", "postgres"):
        if secrets.is_managed(venue, part):
            continue
        for api_version, kind in _MANAGED_ONLY:
            name = child_name(venue, part)
            if call(f"delete {kind} {name}", kube.delete, api_version, kind, ns, name):
                removed.append(Action("Removed", kind, name))
    return removed


def restore(kube: Kube, venue: Venue, replicas: int, child: Object,
            deleted: bool, *, operator_namespace: str | None) -> Action | None:
    """Put back one child edited or deleted by hand; None when it is as rendered."""
    if child["kind"] == "Secret":
        # Generated Secrets are never overwritten, only made again when deleted. A changed
        # one (a rotated password) is the venue's new truth: the pods that read it roll.
        if not deleted:
            return None
        wanted = [s for s in secrets.generated_secrets(venue)
                  if key(s) == key(child)]
        if wanted and call(f"create Secret {child['metadata']['name']}", kube.create,
                           owned(venue, wanted[0])):
            return Action("Restored", *key(child))
        return None
    wanted = [m for m in render.children(venue, replicas, operator_namespace)
              if key(m) == key(child)]
    if not wanted:
        return None  # not (or no longer) ours to shape
    manifest = stamp_secrets(kube, venue, owned(venue, wanted[0]))
    if not deleted and not drifted(manifest, child):
        return None
    call(f"apply {manifest['kind']} {manifest['metadata']['name']}", kube.apply, manifest)
    return Action("Restored", *key(manifest))
