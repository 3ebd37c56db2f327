"""Persistent volumes of the StatefulSets (engine journal, Redis, Postgres)."""

from __future__ import annotations

from typing import Any

from venue_operator.render.labels import Venue


def volume_claim(name: str, storage: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": storage["size"]}}}
    if storage.get("storageClassName"):
        spec["storageClassName"] = storage["storageClassName"]
    return {"metadata": {"name": name}, "spec": spec}


def claim_retention(venue: Venue) -> dict[str, str]:
    # Retain by default: deleting a venue by mistake must not delete its journal and orders.
    return {"whenDeleted": venue["spec"]["volumeRetention"], "whenScaled": "Retain"}
