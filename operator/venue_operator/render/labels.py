"""Names and labels of a venue's children: what the operator, selectors and policies key on."""

from __future__ import annotations

from typing import Any

from venue_operator import FIELD_MANAGER

Venue = dict[str, Any]

VENUE_LABEL = "tradingvenue.io/venue"
PARTITION_LABEL = "tradingvenue.io/partition"
COMPONENT_LABEL = "app.kubernetes.io/component"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
NAME_LABEL = "app.kubernetes.io/name"
# The operator's own pods carry this name; managed Redis admits them (queue depth).
OPERATOR_NAME = "tradingvenue-operator"

CONFIG_CHECKSUM_ANNOTATION = "tradingvenue.io/config-checksum"
# On pod templates: a checksum of the Secret values the pods read (reconcile.stamp_secrets).
SECRETS_CHECKSUM_ANNOTATION = "tradingvenue.io/secrets-checksum"


def venue_name(venue: Venue) -> str:
    return venue["metadata"]["name"]


def namespace(venue: Venue) -> str:
    return venue["metadata"]["namespace"]


def child_name(venue: Venue, part: str) -> str:
    return f"{venue_name(venue)}-{part}"


def engine_name(venue: Venue, partition: int) -> str:
    return child_name(venue, f"engine-{partition}")


def selector(venue: Venue, component: str, partition: int | None = None) -> dict[str, str]:
    """The labels that pick one part's pods; stable for the venue's life (selectors are immutable)."""
    labels = {INSTANCE_LABEL: venue_name(venue), COMPONENT_LABEL: component}
    if partition is not None:
        labels[PARTITION_LABEL] = str(partition)
    return labels


def labels(venue: Venue, component: str, partition: int | None = None) -> dict[str, str]:
    return {
        NAME_LABEL: "tradingvenue",
        MANAGED_BY_LABEL: FIELD_MANAGER,
        VENUE_LABEL: venue_name(venue),
        **selector(venue, component, partition),
    }


def metadata(venue: Venue, name: str, component: str, partition: int | None = None,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace(venue),
                            "labels": labels(venue, component, partition)}
    if annotations:
        meta["annotations"] = annotations
    return meta
