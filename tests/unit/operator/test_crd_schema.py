"""The CRD file: one structural schema with defaults, CEL rules that explain themselves,
a status subresource and the printer columns `kubectl get tv` shows."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def _schema(crd):
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _walk(schema, path="$"):
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


def test_names_group_and_version(crd):
    assert crd["metadata"]["name"] == "tradingvenues.tradingvenue.io"
    assert crd["spec"]["group"] == "tradingvenue.io"
    assert crd["spec"]["names"]["kind"] == "TradingVenue"
    assert crd["spec"]["names"]["shortNames"] == ["tv"]
    assert crd["spec"]["scope"] == "Namespaced"
    [version] = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]


def test_status_is_a_subresource(crd):
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_printer_columns_show_ready_phase_submitters_depth_dead_letters_and_age(crd):
    columns = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns == {
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Phase": ".status.phase",
        "Submitters": ".status.submitters.current",
        "Queue depth": ".status.queueDepth",
        "Dead Letters": ".status.deadLetters",  # with -o wide
        "Age": ".metadata.creationTimestamp",
    }


def test_schema_is_structural_every_node_has_a_type(crd):
    for path, node in _walk(_schema(crd)):
        if node.get("x-kubernetes-int-or-string"):
            continue
        assert "type" in node, f"{path} has no type"


def test_every_cel_rule_has_a_message_a_person_reads(crd):
    rules = [(path, rule) for path, node in _walk(_schema(crd))
             for rule in node.get("x-kubernetes-validations", [])]
    assert len(rules) >= 10
    for path, rule in rules:
        assert rule.get("message") and len(rule["message"]) > 20, f"{path}: {rule['rule']}"


def test_the_rules_the_issue_names_are_there(crd):
    messages = " | ".join(rule["message"] for _, node in _walk(_schema(crd))
                          for rule in node.get("x-kubernetes-validations", []))
    for expected in ("submitters.min must not be above submitters.max",
                     "engine.memory is required",
                     "must be a decimal greater than zero",
                     "instrument symbols must be unique",
                     "engine.partitions must not exceed shards"):
        assert expected in messages


def test_engine_cpus_are_whole_numbers(crd):
    cpus = _schema(crd)["properties"]["spec"]["properties"]["engine"]["properties"]["cpus"]
    assert cpus["type"] == "integer" and cpus["minimum"] == 1


def test_defaults_make_a_complete_venue_from_instruments_and_memory(venue_with):
    venue = venue_with({"engine": {"memory": "1Gi"}, "gateway": None, "submitters": None,
                        "redis": None, "postgres": None})
    spec = venue["spec"]
    assert spec["image"] == "ghcr.io/tradingvenue/venue:0.1.0"
    assert spec["engine"]["image"] == "ghcr.io/tradingvenue/engine:0.1.0"
    assert spec["engine"]["nodeSelector"] == {"tradingvenue.io/engine-node": "true"}
    assert spec["submitters"] == {"min": 1, "max": 4, "targetQueueDepth": 1000,
                                  "scaleDownStabilizationSeconds": 300,
                                  "resources": spec["submitters"]["resources"]}
    assert spec["redis"]["mode"] == "Managed" and spec["redis"]["image"] == "redis:7"
    assert spec["postgres"]["image"] == "postgres:16"
    assert spec["postgres"]["storage"]["size"] == "10Gi"
    assert spec["volumeRetention"] == "Retain"


def test_the_sample_is_a_tradingvenue():
    sample = yaml.safe_load((ROOT / "crds" / "samples" / "venue.yaml").read_text())
    assert sample["apiVersion"] == "tradingvenue.io/v1alpha1"
    assert sample["kind"] == "TradingVenue"


def test_the_chart_ships_this_very_file():
    shipped = ROOT / "charts" / "tradingvenue" / "crds" / "tradingvenue.io_tradingvenues.yaml"
    assert shipped.resolve() == (ROOT / "crds" / "tradingvenue.io_tradingvenues.yaml").resolve()
