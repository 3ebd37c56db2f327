"""What every venue process (gateway, submitter, writer, migrate) reads from its environment.

The names are venue.contract.config.Settings' (REDIS_URL, DATABASE_URL, VENUE_*), plus the
standard OpenTelemetry variables.
"""

from __future__ import annotations

from typing import Any

from venue_operator.render.configmap import CONFIG_PATH
from venue_operator.render.labels import Venue, engine_name, venue_name
from venue_operator.render.secrets import url_ref

ENGINE_PORT = 50051


def engine_addresses(venue: Venue) -> str:
    """VENUE_ENGINES: the per-partition engine Services, in partition order."""
    return ",".join(f"{engine_name(venue, p)}:{ENGINE_PORT}"
                    for p in range(venue["spec"]["engine"]["partitions"]))


def secret_env(name: str, ref: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": ref["key"]}}}


def venue_env(venue: Venue, component: str, *, redis: bool = True,
              database: bool = False) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "VENUE_CONFIG", "value": CONFIG_PATH},
        {"name": "VENUE_ENGINES", "value": engine_addresses(venue)},
        # The pod's name: a stable, unique consumer name in the streams' consumer groups.
        {"name": "VENUE_INSTANCE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    if redis:
        env.append(secret_env("REDIS_URL", url_ref(venue, "redis")))
    if database:
        env.append(secret_env("DATABASE_URL", url_ref(venue, "postgres")))
    return env + telemetry_env(venue, component)


def telemetry_env(venue: Venue, component: str) -> list[dict[str, Any]]:
    telemetry = venue["spec"]["telemetry"]
    env = [{"name": "OTEL_SERVICE_NAME", "value": f"venue-{component}"},
           {"name": "OTEL_RESOURCE_ATTRIBUTES",
            "value": f"tradingvenue.venue={venue_name(venue)}"}]
    endpoint = telemetry.get("otlpEndpoint")
    if endpoint:
        env += [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": endpoint},
                {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": telemetry["otlpProtocol"]},
                {"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio"},
                {"name": "OTEL_TRACES_SAMPLER_ARG", "value": str(telemetry["samplingRatio"])}]
    else:
        env += [{"name": "OTEL_TRACES_EXPORTER", "value": "none"},
                {"name": "OTEL_METRICS_EXPORTER", "value": "none"}]
    return env
