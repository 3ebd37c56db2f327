"""The pod template shared by the venue's Python parts (gateway, submitter, writer): one
image, the `venue` CLI, the config mounted and its checksum on the template."""

from __future__ import annotations

from typing import Any

from venue_operator.render.configmap import config_checksum, config_mount, config_volume
from venue_operator.render.environment import venue_env
from venue_operator.render.labels import CONFIG_CHECKSUM_ANNOTATION, Venue, labels
from venue_operator.render.pod_security import (
    VENUE_UID,
    container_security_context,
    pod_security_context,
)
from venue_operator.render.secrets import api_key_ref
from venue_operator.render.service_accounts import service_account_name

_TMP = {"name": "tmp", "emptyDir": {}}
# Where a submitter or writer serves its Prometheus metrics (VENUE_METRICS_PORT); the
# gateway serves them on its HTTP port.
METRICS_PORT = 9100
METRICS_PATH = "/metrics"
_TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}


def venue_container(venue: Venue, name: str, args: list[str], *, database: bool,
                    resources: dict[str, Any] | None = None, redis: bool = True,
                    **extra: Any) -> dict[str, Any]:
    spec = venue["spec"]
    container = {
        "name": name,
        "image": spec["image"],
        "imagePullPolicy": spec["imagePullPolicy"],
        "command": ["venue"],
        "args": args,
        "env": venue_env(venue, name, redis=redis, database=database),
        "volumeMounts": [config_mount(), _TMP_MOUNT],
        "securityContext": container_security_context(),
    }
    if resources:
        container["resources"] = resources
    container.update(extra)
    return container


def serves_metrics(container: dict[str, Any]) -> dict[str, Any]:
    """A submitter or writer container with its metrics port."""
    container["env"].append({"name": "VENUE_METRICS_PORT", "value": str(METRICS_PORT)})
    container.setdefault("ports", []).append(
        {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"})
    return container


def scraped(template: dict[str, Any], port: int = METRICS_PORT) -> dict[str, Any]:
    """The annotations a plain Prometheus (kubernetes_sd_configs, role pod) scrapes by."""
    template["metadata"].setdefault("annotations", {}).update({
        "prometheus.io/scrape": "true", "prometheus.io/port": str(port),
        "prometheus.io/path": METRICS_PATH})
    return template


def migrate_container(venue: Venue, resources: dict[str, Any]) -> dict[str, Any]:
    """`venue migrate` before the part starts; migrations take an advisory lock, so the
    gateway's and the writer's init containers may run at once. It has the part's own
    resources, so the pod asks the scheduler for no more than the part does."""
    container = venue_container(venue, "migrate", ["migrate"], database=True, redis=False,
                                resources=resources)
    # The venue's first API key, generated once by the operator, for migrate to register.
    container["env"].append({"name": "VENUE_BOOTSTRAP_API_KEY", "valueFrom": {
        "secretKeyRef": {**api_key_ref(venue), "optional": True}}})
    return container


def pod_template(venue: Venue, component: str, containers: list[dict[str, Any]],
                 init_containers: list[dict[str, Any]] | None = None,
                 termination_grace_seconds: int = 30) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "serviceAccountName": service_account_name(venue, component),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(VENUE_UID),
        "terminationGracePeriodSeconds": termination_grace_seconds,
        "containers": containers,
        "volumes": [config_volume(venue), _TMP],
    }
    if init_containers:
        pod["initContainers"] = init_containers
    return {
        "metadata": {"labels": labels(venue, component),
                     "annotations": {CONFIG_CHECKSUM_ANNOTATION: config_checksum(venue)}},
        "spec": pod,
    }
