"""NetworkPolicies: only the engine's clients among the venue's pods reach the engine;
only the venue's own pods reach its managed Redis and Postgres, and the operator's pods,
which read queue depth, Redis: those of the operator's own namespace, not any pod that
wears its label."""

from __future__ import annotations

from typing import Any

from venue_operator.render.environment import ENGINE_PORT
from venue_operator.render.labels import (
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    NAME_LABEL,
    OPERATOR_NAME,
    VENUE_LABEL,
    Venue,
    child_name,
    metadata,
    selector,
    venue_name,
)
from venue_operator.render.secrets import POSTGRES_PORT, REDIS_PORT, is_managed


def _policy(venue: Venue, part: str, pod_selector: dict[str, str],
            sources: list[dict[str, Any]], port: int) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(venue, child_name(venue, part), part),
        "spec": {
            "podSelector": {"matchLabels": pod_selector},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": port}]}],
        },
    }


def _venue_pods(venue: Venue) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {VENUE_LABEL: venue_name(venue)}}}


# The label the API server gives every namespace: its name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _operator_pods(operator_namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: operator_namespace}},
            "podSelector": {"matchLabels": {NAME_LABEL: OPERATOR_NAME}}}


# Who calls the engine: submitters send orders; the gateway reads books and the market
# feed's events; the writer replays gaps and tells the engine how far Postgres holds.
ENGINE_CLIENTS = ("gateway", "submitter", "writer")


def engine_network_policy(venue: Venue) -> dict[str, Any]:
    # Every partition's pods.
    clients = {"matchLabels": {INSTANCE_LABEL: venue_name(venue)},
               "matchExpressions": [{"key": COMPONENT_LABEL, "operator": "In",
                                     "values": list(ENGINE_CLIENTS)}]}
    return _policy(venue, "engine", {INSTANCE_LABEL: venue_name(venue), COMPONENT_LABEL: "engine"},
                   [{"podSelector": clients}], ENGINE_PORT)


def redis_network_policy(venue: Venue, operator_namespace: str | None) -> dict[str, Any]:
    """`operator_namespace`: where the operator's pods run (None: the operator runs
    outside the cluster, and no pod is admitted for it)."""
    sources = [_venue_pods(venue)]
    if operator_namespace:
        sources.append(_operator_pods(operator_namespace))
    return _policy(venue, "redis", selector(venue, "redis"), sources, REDIS_PORT)


def postgres_network_policy(venue: Venue) -> dict[str, Any]:
    return _policy(venue, "postgres", selector(venue, "postgres"), [_venue_pods(venue)],
                   POSTGRES_PORT)


def network_policies(venue: Venue, operator_namespace: str | None) -> list[dict[str, Any]]:
    policies = [engine_network_policy(venue)]
    if is_managed(venue, "redis"):
        policies.append(redis_network_policy(venue, operator_namespace))
    if is_managed(venue, "postgres"):
        policies.append(postgres_network_policy(venue))
    return policies
