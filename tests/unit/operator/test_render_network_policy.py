"""Only the engine's clients reach the engine; only the venue's pods reach Redis and
Postgres, and the operator's pods of the operator's namespace Redis. (Enforced on a real
node: tests/k8s/test_node.py.)"""

from __future__ import annotations

from venue_operator.render.network_policy import network_policies
from venue_operator.settings import OperatorSettings


def _by_name(venue, operator_namespace="tradingvenue-system"):
    return {p["metadata"]["name"]: p["spec"]
            for p in network_policies(venue, operator_namespace)}


def test_only_the_engines_clients_reach_the_engine(venue):
    spec = _by_name(venue)["demo-engine"]
    assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/instance": "demo",
                                                  "app.kubernetes.io/component": "engine"}
    [rule] = spec["ingress"]
    # Submitters send orders; the gateway reads books and events; the writer replays gaps
    # and reports what Postgres holds so the engine can prune.
    assert rule["from"] == [{"podSelector": {
        "matchLabels": {"app.kubernetes.io/instance": "demo"},
        "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In",
                              "values": ["gateway", "submitter", "writer"]}]}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 50051}]


def test_only_venue_pods_and_the_operators_pods_of_its_namespace_reach_redis(venue):
    [rule] = _by_name(venue)["demo-redis"]["ingress"]
    # Not any pod that wears the operator's label: those of the operator's namespace.
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"tradingvenue.io/venue": "demo"}}},
        {"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "tradingvenue-system"}},
         "podSelector": {"matchLabels": {"app.kubernetes.io/name": "tradingvenue-operator"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_an_operator_outside_the_cluster_gets_no_pods_admitted(venue):
    [rule] = _by_name(venue, None)["demo-redis"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"tradingvenue.io/venue": "demo"}}}]


def test_the_operator_knows_its_namespace_from_its_service_account(monkeypatch, tmp_path):
    monkeypatch.delenv("TV_OPERATOR_NAMESPACE", raising=False)
    mounted = tmp_path / "namespace"
    monkeypatch.setattr("venue_operator.settings.SERVICE_ACCOUNT_NAMESPACE", mounted)
    assert OperatorSettings().namespace is None  # not in a pod
    mounted.write_text("tradingvenue-system")
    assert OperatorSettings().namespace == "tradingvenue-system"
    monkeypatch.setenv("TV_OPERATOR_NAMESPACE", "elsewhere")
    assert OperatorSettings().namespace == "elsewhere"


def test_only_venue_pods_reach_postgres(venue):
    [rule] = _by_name(venue)["demo-postgres"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"tradingvenue.io/venue": "demo"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]


def test_external_stores_are_not_policed_here(venue_with):
    venue = venue_with({"redis": {"mode": "External", "external": {"urlSecret": {"name": "q"}}},
                        "postgres": {"mode": "External", "external": {"urlSecret": {"name": "d"}}}})
    assert list(_by_name(venue)) == ["demo-engine"]
