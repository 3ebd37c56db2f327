"""NetworkPolicies: only the engine's clients among the venue's pods reach the engine;
only the venue's own pods (and the operator, which reads queue depth) reach its managed
Redis and Postgres."""

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


def _operator_pods() -> dict[str, Any]:
    return {"namespaceSelector": {},
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


def redis_network_policy(venue: Venue) -> dict[str, Any]:
    return _policy(venue, "redis", selector(venue, "redis"),
                   [_venue_pods(venue), _operator_pods()], REDIS_PORT)


def postgres_network_policy(venue: Venue) -> dict[str, Any]:
    return _policy(venue, "postgres", selector(venue, "postgres"), [_venue_pods(venue)],
                   POSTGRES_PORT)


def network_policies(venue: Venue) -> list[dict[str, Any]]:
    policies = [engine_network_policy(venue)]
    if is_managed(venue, "redis"):
        policies.append(redis_network_policy(venue))
    if is_managed(venue, "postgres"):
        policies.append(postgres_network_policy(venue))
    return policies
