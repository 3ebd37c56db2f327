"""Pure render functions: a TradingVenue (the CR body, defaults applied by the API server)
in, the manifest of one child out. No API calls here; the reconciler applies what these
return. Generated Secrets are rendered by render.secrets and created once, never applied.
"""

from __future__ import annotations

from typing import Any

from venue_operator.render.configmap import config_map
from venue_operator.render.engine import engine_service, engine_statefulset
from venue_operator.render.gateway import (
    gateway_deployment,
    gateway_disruption_budget,
    gateway_service,
)
from venue_operator.render.labels import Venue
from venue_operator.render.network_policy import network_policies
from venue_operator.render.postgres import postgres_service, postgres_statefulset
from venue_operator.render.redis import redis_service, redis_statefulset
from venue_operator.render.secrets import is_managed
from venue_operator.render.service_accounts import service_accounts
from venue_operator.render.submitters import submitter_deployment
from venue_operator.render.writer import writer_deployment


def children(venue: Venue, submitter_replicas: int,
             operator_namespace: str | None = None) -> list[dict[str, Any]]:
    """Every child the venue owns except its generated Secrets, in the order to apply them:
    what pods refer to (accounts, config, Services) before the pods' controllers.
    `operator_namespace`: where the operator's pods run (None: outside the cluster)."""
    partitions = range(venue["spec"]["engine"]["partitions"])
    made: list[dict[str, Any]] = [*service_accounts(venue), config_map(venue)]
    if is_managed(venue, "redis"):
        made += [redis_service(venue), redis_statefulset(venue)]
    if is_managed(venue, "postgres"):
        made += [postgres_service(venue), postgres_statefulset(venue)]
    for partition in partitions:
        made += [engine_service(venue, partition), engine_statefulset(venue, partition)]
    made += [
        gateway_service(venue),
        gateway_deployment(venue),
        gateway_disruption_budget(venue),
        submitter_deployment(venue, submitter_replicas),
        writer_deployment(venue),
        *network_policies(venue, operator_namespace),
    ]
    return made
