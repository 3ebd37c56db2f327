"""Only the engine's clients reach the engine; only the venue's pods reach Redis and
Postgres. (Enforced on a real node: tests/k8s/test_node.py.)"""

from __future__ import annotations

from venue_operator.render.network_policy import network_policies


def _by_name(venue):
    return {p["metadata"]["name"]: p["spec"] for p in network_policies(venue)}


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


def test_only_venue_pods_and_the_operator_reach_redis(venue):
    [rule] = _by_name(venue)["demo-redis"]["ingress"]
    assert {"podSelector": {"matchLabels": {"tradingvenue.io/venue": "demo"}}} in rule["from"]
    operator = [f for f in rule["from"] if "namespaceSelector" in f]
    assert operator[0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "tradingvenue-operator"}
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_only_venue_pods_reach_postgres(venue):
    [rule] = _by_name(venue)["demo-postgres"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"tradingvenue.io/venue": "demo"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]


def test_external_stores_are_not_policed_here(venue_with):
    venue = venue_with({"redis": {"mode": "External", "external": {"urlSecret": {"name": "q"}}},
                        "postgres": {"mode": "External", "external": {"urlSecret": {"name": "d"}}}})
    assert list(_by_name(venue)) == ["demo-engine"]
