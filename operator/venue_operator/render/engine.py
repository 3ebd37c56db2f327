"""The matching engine: one StatefulSet and one Service per partition.

Guaranteed QoS (requests equal limits, whole CPUs) so a kubelet with the static CPU
manager gives the engine exclusive cores, which `--cpus auto` pins its matching thread
to; hugepages for its books; dedicated engine nodes (label + taint); a journal volume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from venue.contract.engine import engine_arguments

from venue_operator.render.configmap import config_checksum, venue_config
from venue_operator.render.environment import ENGINE_PORT, telemetry_env
from venue_operator.render.labels import (
    CONFIG_CHECKSUM_ANNOTATION,
    Venue,
    engine_name,
    labels,
    metadata,
    selector,
)
from venue_operator.render.pod_security import (
    VENUE_UID,
    container_security_context,
    pod_security_context,
)
from venue_operator.render.service_accounts import service_account_name
from venue_operator.render.volumes import claim_retention, volume_claim

COMPONENT = "engine"
JOURNAL_DIR = "/var/lib/venue/journal"
HUGEPAGES_DIR = "/dev/hugepages"


def engine_args(venue: Venue, partition: int) -> list[str]:
    """The engine's flags: venue.local.engine's (listen, partition, instruments, journal)
    plus CPU pinning and, when asked for, hugepages."""
    argv = engine_arguments(venue_config(venue), partition, f"0.0.0.0:{ENGINE_PORT}",
                            Path(JOURNAL_DIR))
    argv += ["--cpus", "auto"]
    if venue["spec"]["engine"].get("hugepages"):
        # "try": on the pod's hugepages when the node reserved them, else on normal pages
        # with the reason in the engine's start-up log.
        argv += ["--hugepages", "try"]
    return argv


def engine_resources(venue: Venue) -> dict[str, Any]:
    engine = venue["spec"]["engine"]
    amounts = {"cpu": str(engine["cpus"]), "memory": engine["memory"]}
    hugepages = engine.get("hugepages")
    if hugepages:
        amounts[f"hugepages-{hugepages['size']}"] = hugepages["amount"]
    # Equal requests and limits: Guaranteed QoS.
    return {"requests": dict(amounts), "limits": dict(amounts)}


def engine_statefulset(venue: Venue, partition: int) -> dict[str, Any]:
    engine = venue["spec"]["engine"]
    name = engine_name(venue, partition)
    mounts = [{"name": "journal", "mountPath": JOURNAL_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    hugepages = engine.get("hugepages")
    if hugepages:
        volumes.append({"name": "hugepages",
                        "emptyDir": {"medium": f"HugePages-{hugepages['size']}"}})
        mounts.append({"name": "hugepages", "mountPath": HUGEPAGES_DIR})
    container = {
        "name": COMPONENT,
        "image": engine["image"],
        "imagePullPolicy": venue["spec"]["imagePullPolicy"],
        "command": ["venue-engine"],
        "args": engine_args(venue, partition),
        "env": telemetry_env(venue, COMPONENT),
        "ports": [{"name": "grpc", "containerPort": ENGINE_PORT, "protocol": "TCP"}],
        "resources": engine_resources(venue),
        # The engine answers on its port once its books are rebuilt from the journal.
        "readinessProbe": {"tcpSocket": {"port": "grpc"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "grpc"}, "periodSeconds": 10,
                          "failureThreshold": 6},
        "volumeMounts": mounts,
        "securityContext": container_security_context(),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(venue, name, COMPONENT, partition),
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": {"matchLabels": selector(venue, COMPONENT, partition)},
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "persistentVolumeClaimRetentionPolicy": claim_retention(venue),
            "template": {
                "metadata": {"labels": labels(venue, COMPONENT, partition),
                             "annotations": {CONFIG_CHECKSUM_ANNOTATION: config_checksum(venue)}},
                "spec": {
                    "serviceAccountName": service_account_name(venue, COMPONENT),
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(VENUE_UID),
                    "nodeSelector": dict(engine["nodeSelector"]),
                    "tolerations": [dict(t) for t in engine["tolerations"]],
                    # Partitions of one venue spread over engine nodes when there are enough.
                    "affinity": {"podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [{
                            "weight": 100,
                            "podAffinityTerm": {
                                "topologyKey": "kubernetes.io/hostname",
                                "labelSelector": {"matchLabels": selector(venue, COMPONENT)},
                            },
                        }]}},
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": [volume_claim("journal", engine["journal"])],
        },
    }


def engine_service(venue: Venue, partition: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(venue, engine_name(venue, partition), COMPONENT, partition),
        "spec": {
            "selector": selector(venue, COMPONENT, partition),
            "ports": [{"name": "grpc", "port": ENGINE_PORT, "targetPort": "grpc",
                       "protocol": "TCP", "appProtocol": "grpc"}],
        },
    }


def engine_endpoints(venue: Venue) -> list[str]:
    ns = venue["metadata"]["namespace"]
    return [f"{engine_name(venue, p)}.{ns}.svc:{ENGINE_PORT}"
            for p in range(venue["spec"]["engine"]["partitions"])]
