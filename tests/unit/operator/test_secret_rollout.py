"""Rotating a Secret rolls exactly the pods that read it: each pod template carries a
checksum of the Secret values its containers take (reconcile.stamp_secrets)."""

from __future__ import annotations

from venue_operator.reconcile import children, secret_refs
from venue_operator.render.labels import SECRETS_CHECKSUM_ANNOTATION


class SecretStore:
    """The part of Kube that stamping reads: Secret values by name and key."""

    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values
        self.reads: list[tuple[str, str, str]] = []

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        self.reads.append((namespace, name, key))
        return self.values.get((name, key))


def stamps(venue, store) -> dict[str, str | None]:
    out = {}
    for manifest in children(store, venue, 1):
        if manifest["kind"] in ("Deployment", "StatefulSet"):
            annotations = manifest["spec"]["template"]["metadata"].get("annotations") or {}
            out[manifest["metadata"]["name"]] = annotations.get(SECRETS_CHECKSUM_ANNOTATION)
    return out


def test_a_rotated_redis_password_changes_the_stamp_of_its_users_only(venue):
    values = {("demo-redis", "password"): "old", ("demo-redis", "url"): "redis://:old@r",
              ("demo-postgres", "password"): "pg", ("demo-postgres", "url"): "postgresql://pg",
              ("demo-api-key", "key"): "tv_key"}
    before = stamps(venue, SecretStore(values))
    values[("demo-redis", "password")] = "new"
    values[("demo-redis", "url")] = "redis://:new@r"
    after = stamps(venue, SecretStore(values))
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"demo-redis", "demo-gateway", "demo-submitter", "demo-writer"}
    # Postgres reads no Redis Secret; the engine reads no Secret at all.
    assert after["demo-postgres"] == before["demo-postgres"] is not None
    assert after["demo-engine-0"] is None


def test_the_stamp_is_the_same_for_the_same_values(venue):
    values = {("demo-redis", "url"): "redis://:a@r"}
    assert stamps(venue, SecretStore(values)) == stamps(venue, SecretStore(dict(values)))


def test_secret_refs_cover_init_containers(venue):
    gateway = next(m for m in children(SecretStore({}), venue, 1)
                   if m["kind"] == "Deployment" and m["metadata"]["name"] == "demo-gateway")
    refs = secret_refs(gateway)
    assert ("demo-api-key", "key") in refs  # only migrate, an init container, reads it
    assert ("demo-redis", "url") in refs
