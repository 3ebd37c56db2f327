"""Persistent volumes of the StatefulSets (engine journal, Redis, Postgres)."""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from venue_operator.render.labels import Venue

_SUFFIXES = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50,
             "Ei": 1 << 60, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
             "E": 10**18, "m": Fraction(1, 1000), "": 1}
_QUANTITY = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+)|("
                       + "|".join(sorted(filter(None, _SUFFIXES), key=len, reverse=True))
                       + ")?)")


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes quantity of bytes ("10Gi", "500M", "1e9") as an integer, rounded down.
    The CRD accepts only quantities: anything else raises ValueError."""
    match = _QUANTITY.fullmatch(quantity.strip())
    if match is None:
        raise ValueError(f"{quantity!r} is not a quantity")
    number, exponent, suffix = match.groups()
    value = Fraction(number)
    value *= Fraction(10) ** int(exponent) if exponent else _SUFFIXES[suffix or ""]
    return int(value)


def volume_claim(name: str, storage: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": storage["size"]}}}
    if storage.get("storageClassName"):
        spec["storageClassName"] = storage["storageClassName"]
    return {"metadata": {"name": name}, "spec": spec}


def claim_retention(venue: Venue) -> dict[str, str]:
    # Retain by default: deleting a venue by mistake must not delete its journal and orders.
    return {"whenDeleted": venue["spec"]["volumeRetention"], "whenScaled": "Retain"}
