"""Managed Redis (the order queue): StatefulSet with an append-only file on a volume, and
its Service. An external Redis renders nothing: pods read its URL from the named Secret."""

from __future__ import annotations

from typing import Any

from venue.contract.keys import REDIS_MAXMEMORY_SHARE, REDIS_PERSISTENCE_ARGS
from venue_operator.render.data_store import data_store_service, data_store_statefulset
from venue_operator.render.environment import secret_env
from venue_operator.render.labels import Venue, child_name
from venue_operator.render.secrets import PASSWORD_KEY, REDIS_PORT
from venue_operator.render.volumes import quantity_bytes

PART = "redis"
_PING = 'redis-cli -a "$REDIS_PASSWORD" --no-auth-warning ping | grep -q PONG'


def redis_statefulset(venue: Venue) -> dict[str, Any]:
    spec = venue["spec"][PART]
    container = {
        "name": PART,
        "image": spec["image"],
        "imagePullPolicy": venue["spec"]["imagePullPolicy"],
        "command": ["redis-server"],
        # A 202 from the gateway means "in the append-only file"; fsync policy per spec.
        "args": ["--port", str(REDIS_PORT), "--dir", "/data", *REDIS_PERSISTENCE_ARGS,
                 "--appendfsync", spec["appendfsync"], "--requirepass", "$(REDIS_PASSWORD)"],
        "env": [secret_env("REDIS_PASSWORD", {"name": child_name(venue, PART),
                                              "key": PASSWORD_KEY})],
        "ports": [{"name": PART, "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"exec": {"command": ["sh", "-c", _PING]}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": PART}, "periodSeconds": 10,
                          "failureThreshold": 6},
    }
    limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
    if limit:  # full before the kernel's OOM killer: refused writes, nothing lost
        container["args"] += ["--maxmemory", str(int(quantity_bytes(str(limit))
                                                     * REDIS_MAXMEMORY_SHARE))]
    return data_store_statefulset(venue, PART, container, "/data", scratch=["/tmp"])


def redis_service(venue: Venue) -> dict[str, Any]:
    return data_store_service(venue, PART, REDIS_PORT)
