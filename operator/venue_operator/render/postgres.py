"""Managed PostgreSQL (orders and executions): StatefulSet on a volume, and its Service.
An external Postgres renders nothing: pods read its URL from the named Secret."""

from __future__ import annotations

from typing import Any

from venue.db import max_wal_size_mb, write_heavy_args
from venue_operator.render.data_store import data_store_service, data_store_statefulset
from venue_operator.render.environment import secret_env
from venue_operator.render.labels import Venue, child_name
from venue_operator.render.secrets import PASSWORD_KEY, POSTGRES_DB, POSTGRES_PORT, POSTGRES_USER
from venue_operator.render.volumes import quantity_bytes

PART = "postgres"
_DATA = "/var/lib/postgresql/data"
_READY = ["pg_isready", "-h", "127.0.0.1", "-U", POSTGRES_USER, "-d", POSTGRES_DB]


def postgres_statefulset(venue: Venue) -> dict[str, Any]:
    spec = venue["spec"][PART]
    container = {
        "name": PART,
        "image": spec["image"],
        "imagePullPolicy": venue["spec"]["imagePullPolicy"],
        # The image's entrypoint runs these as the server's command line; the WAL kept
        # between checkpoints is sized to the volume.
        "args": ["postgres",
                 *write_heavy_args(max_wal_size_mb(quantity_bytes(spec["storage"]["size"])))],
        "env": [
            {"name": "POSTGRES_USER", "value": POSTGRES_USER},
            {"name": "POSTGRES_DB", "value": POSTGRES_DB},
            secret_env("POSTGRES_PASSWORD", {"name": child_name(venue, PART),
                                             "key": PASSWORD_KEY}),
            # A subdirectory: the volume's root may hold lost+found, which initdb refuses.
            {"name": "PGDATA", "value": f"{_DATA}/pgdata"},
        ],
        "ports": [{"name": PART, "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
        "readinessProbe": {"exec": {"command": _READY}, "periodSeconds": 5},
        "livenessProbe": {"exec": {"command": _READY}, "periodSeconds": 10,
                          "failureThreshold": 6},
    }
    return data_store_statefulset(venue, PART, container, _DATA,
                                  scratch=["/tmp", "/var/run/postgresql"])


def postgres_service(venue: Venue) -> dict[str, Any]:
    return data_store_service(venue, PART, POSTGRES_PORT)
