"""The pod shape shared by the managed data stores (Redis, Postgres): one StatefulSet
replica on a persistent volume, its Service, and its own service account."""

from __future__ import annotations

from typing import Any

from venue_operator.render.labels import Venue, child_name, labels, metadata, selector
from venue_operator.render.pod_security import (
    DATA_STORE_UID,
    container_security_context,
    pod_security_context,
)
from venue_operator.render.service_accounts import service_account_name
from venue_operator.render.volumes import claim_retention, volume_claim


def data_store_statefulset(venue: Venue, part: str, container: dict[str, Any],
                           data_dir: str, scratch: list[str]) -> dict[str, Any]:
    """`scratch`: directories the image writes besides its data (the root fs is read-only)."""
    volumes = [{"name": f"scratch-{i}", "emptyDir": {}} for i in range(len(scratch))]
    container = {
        **container,
        "volumeMounts": [{"name": "data", "mountPath": data_dir},
                         *({"name": f"scratch-{i}", "mountPath": path}
                           for i, path in enumerate(scratch))],
        "securityContext": container_security_context(),
    }
    spec = venue["spec"][part]
    if spec.get("resources"):
        container["resources"] = spec["resources"]
    name = child_name(venue, part)
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(venue, name, part),
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": {"matchLabels": selector(venue, part)},
            "updateStrategy": {"type": "RollingUpdate"},
            "persistentVolumeClaimRetentionPolicy": claim_retention(venue),
            "template": {
                "metadata": {"labels": labels(venue, part)},
                "spec": {
                    "serviceAccountName": service_account_name(venue, part),
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(DATA_STORE_UID),
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": [volume_claim("data", spec["storage"])],
        },
    }


def data_store_service(venue: Venue, part: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(venue, child_name(venue, part), part),
        "spec": {
            "selector": selector(venue, part),
            "ports": [{"name": part, "port": port, "targetPort": part, "protocol": "TCP"}],
        },
    }
