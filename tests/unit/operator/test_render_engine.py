"""The engine StatefulSet per partition: Guaranteed QoS, hugepages, engine nodes, journal."""

from __future__ import annotations

from venue_operator.render.engine import engine_service, engine_statefulset


def _pod(statefulset):
    return statefulset["spec"]["template"]["spec"]


def test_requests_equal_limits_with_whole_cpus_guaranteed_qos(venue):
    [container] = _pod(engine_statefulset(venue, 0))["containers"]
    resources = container["resources"]
    assert resources["requests"] == resources["limits"]
    assert resources["requests"]["cpu"] == "2"
    assert resources["requests"]["memory"] == "2Gi"


def test_hugepages_resource_and_hugepages_medium_volume(venue):
    pod = _pod(engine_statefulset(venue, 0))
    [container] = pod["containers"]
    assert container["resources"]["limits"]["hugepages-2Mi"] == "512Mi"
    assert {"name": "hugepages", "emptyDir": {"medium": "HugePages-2Mi"}} in pod["volumes"]
    assert {"name": "hugepages", "mountPath": "/dev/hugepages"} in container["volumeMounts"]
    assert "--hugepages" in container["args"]


def test_1gi_pages_use_their_own_resource_and_medium(venue_with):
    venue = venue_with({"engine.hugepages": {"size": "1Gi", "amount": "2Gi"}})
    pod = _pod(engine_statefulset(venue, 0))
    assert pod["containers"][0]["resources"]["requests"]["hugepages-1Gi"] == "2Gi"
    assert {"name": "hugepages", "emptyDir": {"medium": "HugePages-1Gi"}} in pod["volumes"]


def test_without_hugepages_no_hugepages_anywhere(venue_with):
    venue = venue_with({"engine.hugepages": None})
    pod = _pod(engine_statefulset(venue, 0))
    container = pod["containers"][0]
    assert not any(k.startswith("hugepages") for k in container["resources"]["limits"])
    assert all(v["name"] != "hugepages" for v in pod["volumes"])
    assert "--hugepages" not in container["args"]


def test_lands_only_on_engine_nodes(venue):
    pod = _pod(engine_statefulset(venue, 0))
    assert pod["nodeSelector"] == {"tradingvenue.io/engine-node": "true"}
    assert pod["tolerations"] == [{"key": "tradingvenue.io/engine", "operator": "Equal",
                                   "value": "true", "effect": "NoSchedule"}]


def test_engine_arguments_come_from_the_venue_config_plus_pinning(venue):
    args = _pod(engine_statefulset(venue, 0))["containers"][0]["args"]
    assert args[:4] == ["--listen", "0.0.0.0:50051", "--partition", "0"]
    assert args[args.index("--data-dir") + 1] == "/var/lib/venue/journal"
    # BTC-USD: id 1, band 0.01..1000000 at tick 0.01 -> ticks 1..100000000.
    assert "1:1:100000000" in args and "2:1:10000000" in args
    assert args[args.index("--cpus") + 1] == "auto"


def test_each_partition_gets_its_own_instruments(venue_with):
    venue = venue_with({"engine.partitions": 2})
    first = _pod(engine_statefulset(venue, 0))["containers"][0]["args"]
    second = _pod(engine_statefulset(venue, 1))["containers"][0]["args"]
    # id 1 -> shard 1 -> partition 1; id 2 -> shard 2 -> partition 0.
    assert "2:1:10000000" in first and "1:1:100000000" not in first
    assert "1:1:100000000" in second and "--partition" in second
    assert second[second.index("--partition") + 1] == "1"


def test_journal_is_a_volume_claim_template(venue_with):
    venue = venue_with({"engine.journal": {"size": "20Gi", "storageClassName": "fast-nvme"}})
    statefulset = engine_statefulset(venue, 0)
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "journal"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "fast-nvme"
    mounts = _pod(statefulset)["containers"][0]["volumeMounts"]
    assert {"name": "journal", "mountPath": "/var/lib/venue/journal"} in mounts


def test_names_selectors_and_config_checksum(venue):
    statefulset = engine_statefulset(venue, 0)
    assert statefulset["metadata"]["name"] == "demo-engine-0"
    assert statefulset["metadata"]["namespace"] == "markets"
    assert statefulset["spec"]["serviceName"] == "demo-engine-0"
    assert statefulset["spec"]["replicas"] == 1
    selector = statefulset["spec"]["selector"]["matchLabels"]
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert labels["tradingvenue.io/partition"] == "0"
    assert "tradingvenue.io/config-checksum" in statefulset["spec"]["template"]["metadata"]["annotations"]


def test_runs_without_privileges_or_an_api_token(venue):
    pod = _pod(engine_statefulset(venue, 0))
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "demo-engine"
    assert pod["securityContext"]["runAsNonRoot"] is True
    context = pod["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_volumes_are_retained_when_the_venue_goes_unless_asked(venue, venue_with):
    policy = engine_statefulset(venue, 0)["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert policy == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    deleting = venue_with({"volumeRetention": "Delete"})
    policy = engine_statefulset(deleting, 0)["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert policy["whenDeleted"] == "Delete"


def test_service_per_partition_selects_only_that_partition(venue):
    service = engine_service(venue, 0)
    assert service["metadata"]["name"] == "demo-engine-0"
    assert service["spec"]["selector"]["tradingvenue.io/partition"] == "0"
    assert service["spec"]["ports"][0]["port"] == 50051


def test_hugepages_flag_carries_its_value(venue):
    # The engine's --hugepages takes try|require|off; a bare flag stops it at start-up.
    args = engine_statefulset(venue, 0)["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--hugepages"):][:2] == ["--hugepages", "try"]
