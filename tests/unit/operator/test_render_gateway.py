"""Gateway Deployment, Service and PodDisruptionBudget."""

from __future__ import annotations

from venue.contract.config import Settings
from venue_operator.render.gateway import (
    duration_s,
    gateway_deployment,
    gateway_disruption_budget,
    gateway_service,
)


def _env(container):
    return {e["name"]: e for e in container["env"]}


def test_runs_venue_gateway_with_probes(venue):
    deployment = gateway_deployment(venue)
    assert deployment["spec"]["replicas"] == 2
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/tradingvenue/venue:0.1.0"
    assert container["command"] == ["venue"]
    assert container["args"] == ["gateway", "--host", "0.0.0.0", "--port", "8000"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_reads_config_engines_redis_and_database_from_the_venue(venue):
    [container] = gateway_deployment(venue)["spec"]["template"]["spec"]["containers"]
    env = _env(container)
    assert env["VENUE_CONFIG"]["value"] == "/etc/venue/venue.json"
    assert env["VENUE_ENGINES"]["value"] == "demo-engine-0:50051"
    assert env["VENUE_INSTANCE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "demo-redis", "key": "url"}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "demo-postgres",
                                                                "key": "url"}
    assert {"name": "venue-config", "mountPath": "/etc/venue", "readOnly": True} in \
        container["volumeMounts"]


def test_backpressure_limits_come_from_the_spec(venue, venue_with):
    env = _env(gateway_deployment(venue)["spec"]["template"]["spec"]["containers"][0])
    assert env["VENUE_SHARD_LAG_LIMIT"]["value"] == "100000"
    assert env["VENUE_UNPERSISTED_LIMIT"]["value"] == "500000"
    assert env["VENUE_DEDUP_WINDOW_S"]["value"] == "600"  # the CRD's 10m
    tight = venue_with({"gateway.shardLagLimit": 5000, "gateway.unpersistedLimit": 20000,
                        "gateway.dedupWindow": "36h"})
    env = _env(gateway_deployment(tight)["spec"]["template"]["spec"]["containers"][0])
    assert env["VENUE_SHARD_LAG_LIMIT"]["value"] == "5000"
    assert env["VENUE_DEDUP_WINDOW_S"]["value"] == str(36 * 3600)
    assert env["VENUE_UNPERSISTED_LIMIT"]["value"] == "20000"


def test_the_crds_backpressure_defaults_are_the_gateways_own(venue):
    fields = Settings.model_fields
    assert venue["spec"]["gateway"]["shardLagLimit"] == fields["shard_lag_limit"].default
    assert venue["spec"]["gateway"]["unpersistedLimit"] == fields["unpersisted_limit"].default
    assert duration_s(venue["spec"]["gateway"]["dedupWindow"]) == fields["dedup_window_s"].default
    limits = venue["spec"]["gateway"]["accountLimits"]  # for a venue of one gateway pod
    assert limits["ordersPerSecond"] == fields["account_orders_per_s"].default
    assert limits["burst"] == fields["account_burst"].default
    assert limits["webSocketsPerAccount"] == fields["account_ws_connections"].default
    assert limits["openOrders"] == fields["account_open_orders"].default


def test_each_gateway_pod_enforces_its_share_of_the_account_limits(venue_with):
    venue = venue_with({"gateway.replicas": 4, "gateway.accountLimits": {
        "ordersPerSecond": 1000, "burst": 2000, "webSocketsPerAccount": 6,
        "openOrders": 500}})
    env = _env(gateway_deployment(venue)["spec"]["template"]["spec"]["containers"][0])
    assert float(env["VENUE_ACCOUNT_ORDERS_PER_S"]["value"]) == 250
    assert float(env["VENUE_ACCOUNT_BURST"]["value"]) == 500
    assert env["VENUE_ACCOUNT_WS_CONNECTIONS"]["value"] == "1"
    assert env["VENUE_ACCOUNT_OPEN_ORDERS"]["value"] == "500"  # counted venue-wide


def test_the_crds_connection_limits_are_the_gateways_own(venue):
    fields = Settings.model_fields
    env = _env(gateway_deployment(venue)["spec"]["template"]["spec"]["containers"][0])
    for name, field in [("VENUE_REQUEST_HEAD_TIMEOUT_S", "request_head_timeout_s"),
                        ("VENUE_REQUEST_BODY_TIMEOUT_S", "request_body_timeout_s"),
                        ("VENUE_MARKET_SUBSCRIBE_WITHIN_S", "market_subscribe_within_s"),
                        ("VENUE_MARKET_SOCKETS", "market_sockets"),
                        ("VENUE_MARKET_SOCKETS_PER_ADDRESS", "market_sockets_per_address"),
                        ("VENUE_HTTP_CONNECTIONS", "http_connections"),
                        ("VENUE_HTTP_CONNECTIONS_PER_ADDRESS", "http_connections_per_address"),
                        ("VENUE_MARKET_BUFFER_BYTES", "market_buffer_bytes")]:
        assert float(env[name]["value"]) == fields[field].default, name


def test_connection_limits_come_from_the_spec(venue_with):
    venue = venue_with({"gateway.connections": {
        "requestHeadTimeout": "3s", "requestBodyTimeout": "2m", "marketSubscribeWithin": "45s",
        "marketSockets": 250, "marketSocketsPerAddress": 20, "marketBuffer": "512Ki",
        "httpConnections": 300, "httpConnectionsPerAddress": 30,
        "trustedProxies": ["10.0.0.0/8", "fd00::/8"]}})
    env = _env(gateway_deployment(venue)["spec"]["template"]["spec"]["containers"][0])
    assert env["VENUE_REQUEST_HEAD_TIMEOUT_S"]["value"] == "3"
    assert env["VENUE_REQUEST_BODY_TIMEOUT_S"]["value"] == "120"
    assert env["VENUE_MARKET_SUBSCRIBE_WITHIN_S"]["value"] == "45"
    assert env["VENUE_MARKET_SOCKETS"]["value"] == "250"
    assert env["VENUE_MARKET_SOCKETS_PER_ADDRESS"]["value"] == "20"
    assert env["VENUE_HTTP_CONNECTIONS"]["value"] == "300"
    assert env["VENUE_HTTP_CONNECTIONS_PER_ADDRESS"]["value"] == "30"
    # uvicorn takes X-Forwarded-For from these: the pod's loopback and the spec's.
    assert env["FORWARDED_ALLOW_IPS"]["value"] == "127.0.0.1,::1,10.0.0.0/8,fd00::/8"
    assert env["VENUE_MARKET_BUFFER_BYTES"]["value"] == str(512 << 10)
    # What the pod is given, its gateway takes.
    settings = Settings(**{name.removeprefix("VENUE_").lower(): env[name]["value"] for name in (
        "VENUE_REQUEST_HEAD_TIMEOUT_S", "VENUE_MARKET_SOCKETS", "VENUE_MARKET_BUFFER_BYTES")})
    assert (settings.request_head_timeout_s, settings.market_sockets,
            settings.market_buffer_bytes) == (3.0, 250, 512 << 10)


def test_migrates_the_database_before_it_starts(venue):
    [init] = gateway_deployment(venue)["spec"]["template"]["spec"]["initContainers"]
    assert init["args"] == ["migrate"]
    assert "DATABASE_URL" in _env(init)


def test_external_redis_and_postgres_are_read_from_their_secrets(venue_with):
    venue = venue_with({"redis": {"mode": "External",
                                  "external": {"urlSecret": {"name": "queue", "key": "dsn"}}},
                        "postgres": {"mode": "External",
                                     "external": {"urlSecret": {"name": "db"}}}})
    env = _env(gateway_deployment(venue)["spec"]["template"]["spec"]["containers"][0])
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "queue", "key": "dsn"}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "url"}


def test_telemetry_goes_to_the_otlp_endpoint_when_given(venue, venue_with):
    env = _env(gateway_deployment(venue)["spec"]["template"]["spec"]["containers"][0])
    assert env["OTEL_TRACES_EXPORTER"]["value"] == "none"
    traced = venue_with({"telemetry": {"otlpEndpoint": "http://collector:4317",
                                       "samplingRatio": 0.25}})
    env = _env(gateway_deployment(traced)["spec"]["template"]["spec"]["containers"][0])
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://collector:4317"
    assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.25"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"] == "grpc"  # the CRD's default
    assert env["OTEL_SERVICE_NAME"]["value"] == "venue-gateway"
    http = venue_with({"telemetry": {"otlpEndpoint": "http://collector:4318",
                                     "otlpProtocol": "http/protobuf"}})
    env = _env(gateway_deployment(http)["spec"]["template"]["spec"]["containers"][0])
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"]["value"] == "http/protobuf"
    assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.01"


def test_a_config_change_changes_the_pod_template(venue, venue_with):
    before = gateway_deployment(venue)["spec"]["template"]["metadata"]["annotations"]
    instruments = venue["spec"]["instruments"] + [{
        "symbol": "SOL-USD", "id": 7, "tickSize": "0.001", "lotSize": "0.01",
        "minPrice": "0.001", "maxPrice": "10000", "maxQuantity": "100000"}]
    after = gateway_deployment(venue_with({"instruments": instruments}))
    after = after["spec"]["template"]["metadata"]["annotations"]
    assert before["tradingvenue.io/config-checksum"] != after["tradingvenue.io/config-checksum"]
    # The same spec renders the same checksum: no needless rollouts.
    assert gateway_deployment(venue)["spec"]["template"]["metadata"]["annotations"] == before


def test_service_and_disruption_budget_select_the_gateway_pods(venue):
    deployment = gateway_deployment(venue)
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    service = gateway_service(venue)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pods.items()
    assert service["spec"]["ports"][0]["port"] == 8000
    budget = gateway_disruption_budget(venue)
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= pods.items()


def test_gateway_pods_carry_prometheus_scrape_annotations(venue):
    from venue_operator.render.gateway import PORT
    from venue_operator.render.python_pod import METRICS_PATH
    template = gateway_deployment(venue)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == METRICS_PATH
    [container] = template["spec"]["containers"]
    assert {"name": "http", "containerPort": PORT, "protocol": "TCP"} in container["ports"]
