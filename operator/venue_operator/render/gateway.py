"""The order gateway: Deployment, Service and PodDisruptionBudget."""

from __future__ import annotations

import ipaddress
from typing import Any

from venue_operator.render.labels import Venue, child_name, metadata, selector
from venue_operator.render.python_pod import (
    migrate_container,
    pod_template,
    scraped,
    venue_container,
)
from venue_operator.render.volumes import quantity_bytes

COMPONENT = "gateway"
PORT = 8000
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(text: str) -> int:
    """Seconds of a duration as the CRD writes it: a number and a unit, s, m, h or d."""
    return int(text[:-1]) * _UNIT_S[text[-1]]


def trusted_proxies(venue: Venue) -> list[str]:
    """The gateway's trusted proxies: its pod's loopback (a sidecar), and the spec's, each
    an address or network (ValueError names one that is neither)."""
    given = venue["spec"]["gateway"]["connections"]["trustedProxies"]
    for proxy in given:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ValueError(f"gateway.connections.trustedProxies: {proxy!r} is not an IP "
                             "address or network") from None
    return ["127.0.0.1", "::1", *given]


def gateway_name(venue: Venue) -> str:
    return child_name(venue, COMPONENT)


def gateway_deployment(venue: Venue) -> dict[str, Any]:
    spec = venue["spec"]["gateway"]
    container = venue_container(
        venue, COMPONENT, ["gateway", "--host", "0.0.0.0", "--port", str(PORT)],
        database=True, resources=spec["resources"],
        ports=[{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        livenessProbe={"httpGet": {"path": "/healthz", "port": "http"},
                       "periodSeconds": 10, "failureThreshold": 3},
        # /readyz checks Redis and Postgres: a gateway that cannot queue takes no orders.
        readinessProbe={"httpGet": {"path": "/readyz", "port": "http"},
                        "periodSeconds": 5, "failureThreshold": 2},
    )
    # Backpressure: the gateway refuses new orders (429) past either limit.
    container["env"] += [
        {"name": "VENUE_SHARD_LAG_LIMIT", "value": str(spec["shardLagLimit"])},
        {"name": "VENUE_UNPERSISTED_LIMIT", "value": str(spec["unpersistedLimit"])},
        {"name": "VENUE_DEDUP_WINDOW_S", "value": str(duration_s(spec["dedupWindow"]))}]
    # Per-account limits: each pod enforces its share (venue.api.limits).
    limits, replicas = spec["accountLimits"], max(1, spec["replicas"])
    container["env"] += [
        {"name": "VENUE_ACCOUNT_ORDERS_PER_S", "value": str(limits["ordersPerSecond"] / replicas)},
        {"name": "VENUE_ACCOUNT_BURST", "value": str(limits["burst"] / replicas)},
        {"name": "VENUE_ACCOUNT_WS_CONNECTIONS",
         "value": str(max(1, limits["webSocketsPerAccount"] // replicas))},
        # Open orders are counted venue-wide, in Redis: every pod holds the whole limit.
        {"name": "VENUE_ACCOUNT_OPEN_ORDERS", "value": str(limits["openOrders"])}]
    # What a connection may hold (venue.api.http_protocol, venue.market.socket): per pod,
    # which runs one gateway process.
    connections = spec["connections"]
    container["env"] += [
        {"name": "VENUE_REQUEST_HEAD_TIMEOUT_S",
         "value": str(duration_s(connections["requestHeadTimeout"]))},
        {"name": "VENUE_REQUEST_BODY_TIMEOUT_S",
         "value": str(duration_s(connections["requestBodyTimeout"]))},
        {"name": "VENUE_MARKET_SUBSCRIBE_WITHIN_S",
         "value": str(duration_s(connections["marketSubscribeWithin"]))},
        {"name": "VENUE_MARKET_SOCKETS", "value": str(connections["marketSockets"])},
        {"name": "VENUE_MARKET_SOCKETS_PER_ADDRESS",
         "value": str(connections["marketSocketsPerAddress"])},
        {"name": "VENUE_HTTP_CONNECTIONS", "value": str(connections["httpConnections"])},
        {"name": "VENUE_HTTP_CONNECTIONS_PER_ADDRESS",
         "value": str(connections["httpConnectionsPerAddress"])},
        # uvicorn's: whose X-Forwarded-For it takes as the client's address.
        {"name": "FORWARDED_ALLOW_IPS", "value": ",".join(trusted_proxies(venue))},
        {"name": "VENUE_MARKET_BUFFER_BYTES",
         "value": str(quantity_bytes(connections["marketBuffer"]))}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(venue, gateway_name(venue), COMPONENT),
        "spec": {
            "replicas": spec["replicas"],
            "selector": {"matchLabels": selector(venue, COMPONENT)},
            # Never fewer ready gateways than asked for while rolling.
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": scraped(pod_template(
                venue, COMPONENT, [container],
                init_containers=[migrate_container(venue, spec["resources"])]), PORT),
        },
    }


def gateway_service(venue: Venue) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(venue, gateway_name(venue), COMPONENT),
        "spec": {
            "type": venue["spec"]["gateway"]["serviceType"],
            "selector": selector(venue, COMPONENT),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def gateway_disruption_budget(venue: Venue) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(venue, gateway_name(venue), COMPONENT),
        "spec": {
            # One gateway at a time may be drained; with one replica, the drain waits for a
            # surge replacement rather than leaving the venue without a gateway.
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector(venue, COMPONENT)},
        },
    }


def gateway_endpoint(venue: Venue) -> str:
    return f"http://{gateway_name(venue)}.{venue['metadata']['namespace']}.svc:{PORT}"
