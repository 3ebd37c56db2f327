"""Managed Redis and Postgres (StatefulSet, Service, volume) or, when external, nothing."""

from __future__ import annotations

import pytest

from venue.db import LOCAL_MAX_WAL_SIZE_MB, MIN_MAX_WAL_SIZE_MB, max_wal_size_mb
from venue_operator import render
from venue_operator.render.postgres import postgres_service, postgres_statefulset
from venue_operator.render.redis import redis_service, redis_statefulset
from venue_operator.render.volumes import quantity_bytes

EXTERNAL = {"redis": {"mode": "External", "external": {"urlSecret": {"name": "queue"}}},
            "postgres": {"mode": "External", "external": {"urlSecret": {"name": "db"}}}}


def test_managed_redis_keeps_an_append_only_file_on_its_volume(venue):
    statefulset = redis_statefulset(venue)
    assert statefulset["metadata"]["name"] == "demo-redis"
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "redis:7"
    args = container["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "always"  # the sample asks for it
    assert args[args.index("--save") + 1] == ""  # no RDB snapshots besides the file
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    # Full before its container's memory limit, and full means refused writes (503
    # queue_full), never an evicted order or claim.
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    limit = container["resources"]["limits"]["memory"]
    assert int(args[args.index("--maxmemory") + 1]) == int(quantity_bytes(limit) * 0.7)
    env = {e["name"]: e for e in container["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "demo-redis",
                                                                  "key": "password"}
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]


def test_managed_postgres_initialises_its_database_with_the_generated_password(venue):
    statefulset = postgres_statefulset(venue)
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "postgres:16"
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "demo-postgres",
                                                                     "key": "password"}
    assert env["PGDATA"]["value"].startswith("/var/lib/postgresql/data/")
    args = container["args"]
    # Checkpoints far apart, within two fifths of the 10Gi volume.
    assert args[0] == "postgres" and "max_wal_size=4096MB" in args
    # Replica-level WAL, for backups and standbys (a local Postgres keeps minimal).
    assert not any(arg.startswith("wal_level=") for arg in args)
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"


def test_services_point_at_their_stores(venue):
    assert redis_service(venue)["spec"]["ports"][0]["port"] == 6379
    assert postgres_service(venue)["spec"]["ports"][0]["port"] == 5432
    assert redis_service(venue)["spec"]["selector"]["app.kubernetes.io/component"] == "redis"


def test_external_stores_render_no_statefulset_service_or_account(venue_with):
    venue = venue_with(EXTERNAL)
    names = {(c["kind"], c["metadata"]["name"]) for c in render.children(venue, 1)}
    for part in ("redis", "postgres"):
        assert ("StatefulSet", f"demo-{part}") not in names
        assert ("Service", f"demo-{part}") not in names
        assert ("ServiceAccount", f"demo-{part}") not in names
        assert ("NetworkPolicy", f"demo-{part}") not in names


def test_a_venue_renders_every_part_once(venue):
    children = render.children(venue, 2)
    names = [(c["kind"], c["metadata"]["name"]) for c in children]
    assert len(names) == len(set(names))
    assert set(names) == {
        ("ServiceAccount", f"demo-{p}")
        for p in ("gateway", "submitter", "writer", "engine", "redis", "postgres")
    } | {
        ("ConfigMap", "demo-config"),
        ("Service", "demo-redis"), ("StatefulSet", "demo-redis"),
        ("Service", "demo-postgres"), ("StatefulSet", "demo-postgres"),
        ("Service", "demo-engine-0"), ("StatefulSet", "demo-engine-0"),
        ("Service", "demo-gateway"), ("Deployment", "demo-gateway"),
        ("PodDisruptionBudget", "demo-gateway"),
        ("Deployment", "demo-submitter"), ("Deployment", "demo-writer"),
        ("NetworkPolicy", "demo-engine"), ("NetworkPolicy", "demo-redis"),
        ("NetworkPolicy", "demo-postgres"),
    }
    for child in children:
        assert child["metadata"]["namespace"] == "markets"
        assert child["metadata"]["labels"]["tradingvenue.io/venue"] == "demo"
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == \
            "tradingvenue-operator"


def test_every_pod_template_refers_to_an_account_that_exists(venue):
    children = render.children(venue, 1)
    accounts = {c["metadata"]["name"] for c in children if c["kind"] == "ServiceAccount"}
    for child in children:
        if child["kind"] in ("Deployment", "StatefulSet"):
            pod = child["spec"]["template"]["spec"]
            assert pod["serviceAccountName"] in accounts
            assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("quantity", "size"), [
    ("10Gi", 10 << 30), ("500Mi", 500 << 20), ("1.5Ti", 3 << 39), ("100G", 10**11),
    ("1e9", 10**9), ("2E", 2 * 10**18), ("1500m", 1), ("  64Ki ", 65536), ("12", 12)])
def test_quantities_of_bytes(quantity, size):
    assert quantity_bytes(quantity) == size


@pytest.mark.parametrize("quantity", ["", "Gi", "10 Gi", "10GB", "-1Gi", "ten"])
def test_a_quantity_that_is_not_one_is_refused(quantity):
    with pytest.raises(ValueError, match="is not a quantity"):
        quantity_bytes(quantity)


def test_postgres_keeps_wal_in_proportion_to_its_volume():
    assert max_wal_size_mb(10 << 30) == 4096
    assert max_wal_size_mb(1 << 30) == MIN_MAX_WAL_SIZE_MB  # never below 1GB
    assert max_wal_size_mb(1 << 40) == LOCAL_MAX_WAL_SIZE_MB  # nor above a local one's
