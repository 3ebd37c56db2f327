"""A venue as the API server hands it to the operator: the sample, with the CRD's own
defaults applied (so render tests exercise the defaults the cluster would apply)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CRD_PATH = ROOT / "crds" / "tradingvenue.io_tradingvenues.yaml"
SAMPLE_PATH = ROOT / "crds" / "samples" / "venue.yaml"


def load_crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text())


def venue_schema() -> dict[str, Any]:
    return load_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural-schema defaulting as the API server does it: a missing field with a
    default gets it, then defaulting goes on inside it."""
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def make_venue(spec_changes: dict[str, Any] | None = None, *, name: str = "demo",
               status: dict[str, Any] | None = None) -> dict[str, Any]:
    body = yaml.safe_load(SAMPLE_PATH.read_text())
    body["metadata"].update(name=name, namespace="markets", uid="0000-venue-uid", generation=3)
    for path, value in (spec_changes or {}).items():
        node = body["spec"]
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    if status is not None:
        body["status"] = status
    return apply_defaults(venue_schema(), body)


@pytest.fixture
def venue() -> dict[str, Any]:
    return make_venue()


@pytest.fixture
def venue_with():
    """venue_with({"engine.partitions": 2, "redis.mode": "External", ...}): a changed sample."""
    return make_venue


@pytest.fixture
def crd() -> dict[str, Any]:
    return load_crd()
