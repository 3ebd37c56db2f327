"""The API server itself rejects a bad TradingVenue, with the CRD's own message.

Needs only the CRD installed (no operator): what is tested is the schema and its CEL rules
as the real kube-apiserver evaluates them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from venue.local.cluster import wait_until

CRD = Path(__file__).resolve().parents[2] / "crds" / "tradingvenue.io_tradingvenues.yaml"

GOOD = {
    "apiVersion": "tradingvenue.io/v1alpha1",
    "kind": "TradingVenue",
    "metadata": {"name": "v"},
    "spec": {
        "shards": 2,
        "instruments": [
            {"symbol": "BTC-USD", "id": 1, "tickSize": "0.01", "lotSize": "0.0001",
             "minPrice": "0.01", "maxPrice": "1000000"},
            {"symbol": "ETH-USD", "id": 2, "tickSize": "0.01", "lotSize": "0.001",
             "minPrice": "0.01", "maxPrice": "100000"},
        ],
        "engine": {"cpus": 2, "memory": "1Gi"},
        "submitters": {"min": 1, "max": 2},
    },
}


@pytest.fixture(scope="module")
def crd(kube):
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.run("wait", "--for=condition=Established", "--timeout=60s",
             "crd/tradingvenues.tradingvenue.io")
    # The CRD's REST endpoint may lag its Established condition by a moment.
    wait_until("tradingvenues served", lambda: kube.run("get", "tv", "-A", check=False)
               .returncode == 0, timeout=30)


def venue(**changes):
    body = copy.deepcopy(GOOD)
    for path, value in changes.items():
        node = body
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return body


def rejected(kube, namespace, body) -> str:
    proc = kube.run("create", "-n", namespace, "-f", "-", input=json.dumps(body), check=False)
    assert proc.returncode != 0, f"the API server accepted {body['spec']}"
    return proc.stderr


def test_a_good_venue_is_accepted_and_defaulted(kube, namespace, crd):
    kube.run("create", "-n", namespace, "-f", "-", input=json.dumps(GOOD))
    stored = kube.json("get", "tv", "v", "-n", namespace)
    assert stored["spec"]["engine"]["partitions"] == 1
    assert stored["spec"]["engine"]["nodeSelector"] == {"tradingvenue.io/engine-node": "true"}
    assert stored["spec"]["redis"]["mode"] == "Managed"
    assert stored["spec"]["instruments"][0]["maxQuantity"] == "1000000"


def test_submitter_min_above_max(kube, namespace, crd):
    error = rejected(kube, namespace, venue(spec__submitters={"min": 3, "max": 2}))
    assert "submitters.min must not be above submitters.max" in error


def test_non_integer_engine_cpus(kube, namespace, crd):
    error = rejected(kube, namespace, venue(spec__engine__cpus=1.5))
    assert "spec.engine.cpus" in error and "integer" in error
    error = rejected(kube, namespace, venue(spec__engine__cpus="500m"))
    assert "spec.engine.cpus" in error


def test_hugepages_without_memory(kube, namespace, crd):
    error = rejected(kube, namespace, venue(spec__engine={"cpus": 2, "hugepages": {
        "size": "2Mi", "amount": "256Mi"}}))
    assert "engine.memory is required" in error and "hugepages" in error


def test_an_instrument_with_a_zero_tick(kube, namespace, crd):
    error = rejected(kube, namespace, venue(spec__instruments__0__tickSize="0.00"))
    assert "spec.instruments[0].tickSize" in error
    assert "must be a decimal greater than zero" in error


def test_a_tick_that_is_not_a_decimal(kube, namespace, crd):
    error = rejected(kube, namespace, venue(spec__instruments__0__tickSize="1e-2"))
    assert "spec.instruments[0].tickSize" in error


def test_duplicate_symbols(kube, namespace, crd):
    error = rejected(kube, namespace, venue(spec__instruments__1__symbol="BTC-USD"))
    assert "instrument symbols must be unique" in error


def test_more_partitions_than_shards(kube, namespace, crd):
    error = rejected(kube, namespace, venue(spec__engine__partitions=3))
    assert "engine.partitions must not exceed shards" in error


def test_external_redis_needs_its_secret(kube, namespace, crd):
    error = rejected(kube, namespace, venue(spec__redis={"mode": "External"}))
    assert "redis.external.urlSecret is required" in error


def test_a_name_too_long_for_its_parts(kube, namespace, crd):
    error = rejected(kube, namespace, venue(metadata__name="a" * 40))
    assert "at most 32 characters" in error


def test_connection_limits_out_of_range(kube, namespace, crd):
    error = rejected(kube, namespace, venue(spec__gateway={"connections": {
        "requestHeadTimeout": "0s"}}))
    assert "spec.gateway.connections.requestHeadTimeout" in error
    error = rejected(kube, namespace, venue(spec__gateway={"connections": {
        "requestBodyTimeout": "2h"}}))
    assert "spec.gateway.connections.requestBodyTimeout" in error
    error = rejected(kube, namespace, venue(spec__gateway={"connections": {
        "marketBuffer": "512"}}))
    assert "marketBuffer must be a quantity of bytes of at least 1Ki" in error
    error = rejected(kube, namespace, venue(spec__gateway={"connections": {
        "marketSockets": 0}}))
    assert "spec.gateway.connections.marketSockets" in error
    error = rejected(kube, namespace, venue(spec__gateway={"connections": {
        "httpConnectionsPerAddress": 0}}))
    assert "spec.gateway.connections.httpConnectionsPerAddress" in error
    error = rejected(kube, namespace, venue(spec__gateway={"connections": {
        "trustedProxies": ["10.0.0.0/8", "ingress.example"]}}))
    assert "spec.gateway.connections.trustedProxies[1]" in error


def test_shards_cannot_change_once_the_venue_exists(kube, namespace, crd):
    kube.run("create", "-n", namespace, "-f", "-", input=json.dumps(GOOD))
    proc = kube.run("patch", "tv", "v", "-n", namespace, "--type=merge",
                    "-p", json.dumps({"spec": {"shards": 3}}), check=False)
    assert proc.returncode != 0
    assert "shards cannot change once the venue exists" in proc.stderr
