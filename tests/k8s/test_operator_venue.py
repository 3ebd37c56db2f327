"""The operator against a real control plane, through KUBECONFIG only.

Each test gets a namespace of its own and an operator (`python -m venue_operator
--namespace <it>`, a subprocess, as it runs in a pod) watching only that namespace. The
venue's Redis is external: a real redis-server on this machine (the `redis_url` fixture),
named by a Secret, so the operator reads real consumer-group lag. Its Postgres is managed
(a StatefulSet with a volume); venue.local.node.HostPathVolumes gives each claim a hostPath
volume, as a cluster's provisioner would.

On the kwok control plane pods go Running/Ready without running anything; on a real
cluster the images would have to be pullable, so these tests are for the kwok plane or a
cluster that has them. As nothing runs, what the venue's writer and submitters would say
of their health is said for them into the venue's Redis (venue.bench.kwok_parts).
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import redis
import yaml
from venue.local.cluster import ControlPlaneError, OperatorProcess, wait_until
from venue.local.jaeger import spans_of
from venue.local.node import HostPathVolumes
from venue.local.process import free_port
from venue.bench.kwok_parts import KwokParts
from venue.contract.keys import Keys, SUBMITTERS_GROUP

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "tradingvenue.io_tradingvenues.yaml"
ENGINE_NODE_LABEL = "tradingvenue.io/engine-node"
VENUE = "alpha"
TARGET_PER_SUBMITTER = 10
STABILIZATION_S = 6


# --- harness -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crd(kube):
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.run("wait", "--for=condition=Established", "--timeout=60s",
             "crd/tradingvenues.tradingvenue.io")
    wait_until("tradingvenues served",
               lambda: kube.run("get", "tv", "-A", check=False).returncode == 0, timeout=30)


@pytest.fixture
def volumes(kube, namespace, tmp_path):
    """Binds every pending claim in the namespace to a hostPath volume made for it."""
    binder = HostPathVolumes(kube, tmp_path / "volumes", namespace).start()
    yield binder
    binder.stop()
    if binder.made:
        kube.run("delete", "pv", *binder.made, "--wait=false", "--ignore-not-found", check=False)


def start_operator(namespace: str, kubeconfig: str, log: Path) -> OperatorProcess:
    """The operator on the test's namespace, with short periods so tests see it act."""
    operator = OperatorProcess(log, kubeconfig, namespace, env={
        "TV_OPERATOR_TICK_INTERVAL_S": "1", "TV_OPERATOR_SCALE_UP_PERIOD_S": "2",
        "TV_OPERATOR_SCALE_DOWN_PERIOD_S": "2"})
    operator.wait_alive()
    return operator


@pytest.fixture
def operator(kube, kubeconfig, namespace, crd, volumes, tmp_path):
    running = start_operator(namespace, kubeconfig, tmp_path / "operator.log")
    yield running
    # Venues go first, while the operator can still take its finalizer off them.
    kube.run("delete", "tv", "--all", "-n", namespace, "--timeout=60s", check=False)
    running.stop()
    print(running.tail())  # pytest shows it when the test failed


@pytest.fixture
def parts(redis_url):
    """The venue's writer and submitters saying they are healthy, as kwok runs none."""
    said = KwokParts(redis_url, {VENUE: 2}).start()
    yield said
    said.stop()


@pytest.fixture
def queue_secret(kube, namespace, redis_url, parts):
    kube.create({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "queue", "namespace": namespace},
                 "stringData": {"url": redis_url}})
    return "queue"


def venue_body(**spec_changes) -> dict:
    spec = {
        "shards": 4,
        "instruments": [
            {"symbol": "BTC-USD", "id": 1, "tickSize": "0.01", "lotSize": "0.0001",
             "minPrice": "0.01", "maxPrice": "1000000", "maxQuantity": "1000"},
            {"symbol": "ETH-USD", "id": 2, "tickSize": "0.01", "lotSize": "0.001",
             "minPrice": "0.01", "maxPrice": "100000", "maxQuantity": "10000"},
        ],
        "engine": {"partitions": 2, "cpus": 2, "memory": "1Gi",
                   "hugepages": {"size": "2Mi", "amount": "64Mi"},
                   "journal": {"size": "1Gi"}},
        "gateway": {"replicas": 2},
        "submitters": {"min": 1, "max": 4, "targetQueueDepth": TARGET_PER_SUBMITTER,
                       "scaleDownStabilizationSeconds": STABILIZATION_S},
        "redis": {"mode": "External", "external": {"urlSecret": {"name": "queue"}}},
        "postgres": {"mode": "Managed", "storage": {"size": "1Gi"}},
        "volumeRetention": "Delete",
    }
    spec.update(spec_changes)
    return {"apiVersion": "tradingvenue.io/v1alpha1", "kind": "TradingVenue",
            "metadata": {"name": VENUE}, "spec": spec}


def get(kube, namespace, *what):
    proc = kube.run("get", *what, "-n", namespace, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def conditions_of(venue: dict | None) -> dict[str, dict]:
    return {c["type"]: c for c in ((venue or {}).get("status") or {}).get("conditions", [])}


def wait_ready(kube, namespace, operator, timeout=120, volumes=None) -> dict:
    last: dict[str, dict] = {}  # the conditions of the last look, for the timeout's message

    def ready():
        venue = get(kube, namespace, "tv", VENUE)
        last.clear()
        last.update(conditions_of(venue))
        if last.get("Ready", {}).get("status") == "True":
            return venue
        return None
    try:
        return wait_until(f"venue {VENUE} Ready", ready, timeout=timeout,
                          checks=[operator.check])
    except ControlPlaneError as error:
        # Say where it stood: which condition held it back, and what the operator did
        # (the operator fixture's own print of its log is not shown for a setup error).
        conditions = "\n".join(f"  {kind}: {c.get('status')} {c.get('reason')} "
                               f"{c.get('message')}" for kind, c in last.items())
        raise ControlPlaneError(f"{error}\nconditions:\n{conditions or '  none'}\n"
                                f"pods not ready:\n{pods_not_ready(kube, namespace)}\n"
                                f"claims not bound:\n{claims_not_bound(kube, namespace, volumes)}\n"
                                f"operator log ({operator.log}):\n{operator.tail()}") from None


def pods_not_ready(kube, namespace) -> str:
    """Each pod of the namespace that is not Ready: its phase, node, the conditions that
    are not True, and the warnings recorded about it (why the scheduler or kubelet held it)."""
    lines = []
    warnings = kube.json("get", "events", "-n", namespace,
                         "--field-selector", "type=Warning")["items"]
    for pod in kube.json("get", "pods", "-n", namespace)["items"]:
        status = pod.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        if conditions.get("Ready", {}).get("status") == "True":
            continue
        name = pod["metadata"]["name"]
        lines.append(f"  {name}: {status.get('phase')} on {pod['spec'].get('nodeName') or '-'}"
                     f"{' (deleting)' if pod['metadata'].get('deletionTimestamp') else ''}")
        lines += [f"    {kind}: {c.get('status')} {c.get('reason') or ''} {c.get('message') or ''}"
                  for kind, c in conditions.items() if c.get("status") != "True"]
        lines += [f"    event {e.get('reason')}: {e.get('message')}" for e in warnings
                  if e["involvedObject"].get("name") == name][-3:]
    return "\n".join(lines) or "  none"


def claims_not_bound(kube, namespace, volumes: HostPathVolumes | None) -> str:
    """Each claim of the namespace that is not Bound, with the volume made for it (does it
    exist, in which phase) and why the binder's last round failed, if it did."""
    volumes_by_name = {v["metadata"]["name"]: v for v in kube.json("get", "pv")["items"]}
    lines = []
    for claim in kube.json("get", "pvc", "-n", namespace)["items"]:
        phase = (claim.get("status") or {}).get("phase")
        if phase == "Bound":
            continue
        name = f"pv-{claim['metadata']['uid']}"
        volume = volumes_by_name.get(name)
        made = (f"{name} {volume['status'].get('phase')}, for "
                f"{(volume['spec'].get('claimRef') or {}).get('name')}" if volume
                else f"{name} not made")
        lines.append(f"  {claim['metadata']['name']}: {phase}, volume {made}")
    if volumes is not None and volumes.last_error:
        lines.append(f"  the binder's last round failed: {volumes.last_error}")
    return "\n".join(lines) or "  none"


def events_of(kube, namespace) -> list[dict]:
    return kube.json("get", "events", "-n", namespace,
                     "--field-selector", f"involvedObject.kind=TradingVenue,involvedObject.name={VENUE}")["items"]


@pytest.fixture
def venue(kube, namespace, operator, queue_secret, volumes):
    kube.apply(venue_body(), namespace=namespace)
    return wait_ready(kube, namespace, operator, volumes=volumes)


# --- a venue applied ------------------------------------------------------------------


def test_a_venue_applied_builds_every_child(kube, namespace, venue):
    names = {(o["kind"], o["metadata"]["name"]) for o in kube.json(
        "get", "deploy,sts,svc,cm,secret,sa,pdb,netpol", "-n", namespace,
        "-l", f"tradingvenue.io/venue={VENUE}")["items"]}
    assert names == {
        ("Deployment", "alpha-gateway"), ("Deployment", "alpha-submitter"),
        ("Deployment", "alpha-writer"),
        ("StatefulSet", "alpha-engine-0"), ("StatefulSet", "alpha-engine-1"),
        ("StatefulSet", "alpha-postgres"),
        ("Service", "alpha-engine-0"), ("Service", "alpha-engine-1"),
        ("Service", "alpha-gateway"), ("Service", "alpha-postgres"),
        ("ConfigMap", "alpha-config"),
        ("Secret", "alpha-postgres"), ("Secret", "alpha-api-key"),
        ("ServiceAccount", "alpha-gateway"), ("ServiceAccount", "alpha-submitter"),
        ("ServiceAccount", "alpha-writer"), ("ServiceAccount", "alpha-engine"),
        ("ServiceAccount", "alpha-postgres"),
        ("PodDisruptionBudget", "alpha-gateway"),
        ("NetworkPolicy", "alpha-engine"), ("NetworkPolicy", "alpha-postgres"),
    }
    # Owned by the venue, so deleting it deletes them.
    gateway = get(kube, namespace, "deploy", "alpha-gateway")
    [owner] = gateway["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("TradingVenue", VENUE,
                                                            venue["metadata"]["uid"])
    # The venue's config, from the spec.
    config = json.loads(get(kube, namespace, "cm", "alpha-config")["data"]["venue.json"])
    assert [i["symbol"] for i in config["instruments"]] == ["BTC-USD", "ETH-USD"]
    assert (config["shards"], config["partitions"]) == (4, 2)
    # Every pod reads the external Redis from the named Secret.
    env = {e["name"]: e for e in
           gateway["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "queue", "key": "url"}


def test_engine_pods_are_guaranteed_and_only_on_engine_nodes(kube, namespace, venue,
                                                              engine_nodes):
    pods = kube.json("get", "pods", "-n", namespace,
                     "-l", "app.kubernetes.io/component=engine")["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["nodeName"] in engine_nodes
        assert pod["status"]["qosClass"] == "Guaranteed"
        [container] = pod["spec"]["containers"]
        assert container["resources"]["limits"] == container["resources"]["requests"]
        assert container["resources"]["limits"]["hugepages-2Mi"] == "64Mi"
        assert container["args"][container["args"].index("--cpus") + 1] == "auto"
    # The two partitions spread over the two engine nodes.
    assert len({p["spec"]["nodeName"] for p in pods}) == min(2, len(engine_nodes))


def test_the_venue_reaches_ready_with_its_conditions(kube, namespace, venue):
    conditions = conditions_of(venue)
    for kind in ("Ready", "EngineReady", "GatewayReady", "QueueReady", "DatabaseReady"):
        assert conditions[kind]["status"] == "True", conditions[kind]
        assert conditions[kind]["observedGeneration"] == venue["metadata"]["generation"]
    assert conditions["Scaling"]["status"] == "False"
    status = venue["status"]
    assert status["phase"] == "Ready"
    assert status["observedGeneration"] == venue["metadata"]["generation"]
    assert status["queueDepth"] == 0
    assert status["deadLetters"] == 0
    assert status["submitters"]["desired"] == 1
    assert status["endpoints"]["gateway"] == f"http://alpha-gateway.{namespace}.svc:8000"
    # kopf's bookkeeping is in our annotations, never in status.
    assert set(status) <= {"conditions", "phase", "observedGeneration", "queueDepth",
                           "deadLetters", "submitters", "endpoints"}
    assert any(k.startswith("tradingvenue.io/") for k in venue["metadata"]["annotations"])
    # `kubectl get tv` prints the printer columns.
    table = kube.run("get", "tv", "-n", namespace).stdout.splitlines()
    assert table[0].split()[:6] == ["NAME", "READY", "PHASE", "SUBMITTERS", "QUEUE", "DEPTH"]
    assert table[1].split()[:5] == [VENUE, "True", "Ready", "1", "0"]
    reasons = {e["reason"] for e in events_of(kube, namespace)}
    assert "Created" in reasons


def test_a_stalled_writer_turns_the_venue_red_and_back(kube, namespace, venue, operator,
                                                      parts):
    parts.writer_stalled_s = 25.0  # every pod Ready, yet nothing reaches Postgres
    wait_until("DatabaseReady False", lambda: conditions_of(
        get(kube, namespace, "tv", VENUE))["DatabaseReady"]["status"] == "False",
        timeout=30, checks=[operator.check])
    conditions = conditions_of(get(kube, namespace, "tv", VENUE))
    assert conditions["DatabaseReady"]["reason"] == "PersistenceStopped"
    assert "has not moved for 25 s" in conditions["DatabaseReady"]["message"]
    assert conditions["Ready"]["status"] == "False"
    table = kube.run("get", "tv", "-n", namespace).stdout.splitlines()
    assert table[1].split()[:3] == [VENUE, "False", "Degraded"]
    parts.writer_stalled_s = 0.0
    wait_ready(kube, namespace, operator, timeout=30)


def test_an_invalid_band_is_reported_not_built(kube, namespace, operator, queue_secret):
    body = venue_body()
    body["spec"]["instruments"][0]["minPrice"] = "0.015"  # off the 0.01 tick: CEL can't tell
    kube.apply(body, namespace=namespace)

    def invalid():
        venue = get(kube, namespace, "tv", VENUE)
        return venue if (venue.get("status") or {}).get("phase") == "Invalid" else None

    venue = wait_until("phase Invalid", invalid, timeout=60, checks=[operator.check])
    ready = conditions_of(venue)["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "min_price" in ready["message"]
    assert get(kube, namespace, "deploy", "alpha-gateway") is None
    assert "InvalidSpec" in {e["reason"] for e in events_of(kube, namespace)}


# --- what the operator keeps ------------------------------------------------------------


def test_a_child_edited_by_hand_is_put_back(kube, namespace, venue, operator):
    kube.run("patch", "deploy", "alpha-gateway", "-n", namespace, "--type=json", "-p",
             json.dumps([{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                          "value": "evil:latest"}]))

    def restored():
        gateway = get(kube, namespace, "deploy", "alpha-gateway")
        return gateway["spec"]["template"]["spec"]["containers"][0]["image"] == \
            "ghcr.io/tradingvenue/venue:0.1.0"

    wait_until("the gateway's image put back", restored, timeout=60, checks=[operator.check])
    kube.run("patch", "deploy", "alpha-submitter", "-n", namespace, "--type=merge",
             "-p", json.dumps({"spec": {"replicas": 3}}))
    wait_until("the submitters' replicas put back",
               lambda: get(kube, namespace, "deploy", "alpha-submitter")["spec"]["replicas"] == 1,
               timeout=60, checks=[operator.check])
    assert "Restored" in {e["reason"] for e in events_of(kube, namespace)}


def test_a_child_deleted_by_hand_is_made_again(kube, namespace, venue, operator):
    old_uid = get(kube, namespace, "svc", "alpha-engine-1")["metadata"]["uid"]
    kube.run("delete", "svc", "alpha-engine-1", "-n", namespace)
    kube.run("delete", "cm", "alpha-config", "-n", namespace)

    def back():
        service = get(kube, namespace, "svc", "alpha-engine-1")
        return (service and service["metadata"]["uid"] != old_uid
                and get(kube, namespace, "cm", "alpha-config"))

    wait_until("the Service and ConfigMap made again", back, timeout=60, checks=[operator.check])


def test_a_generated_secret_is_never_overwritten(kube, namespace, venue, operator):
    before = get(kube, namespace, "secret", "alpha-postgres")["data"]
    # A spec change makes the operator reconcile everything again.
    kube.run("patch", "tv", VENUE, "-n", namespace, "--type=merge",
             "-p", json.dumps({"spec": {"writer": {"replicas": 2}}}))
    wait_until("the writer scaled by the spec",
               lambda: get(kube, namespace, "deploy", "alpha-writer")["spec"]["replicas"] == 2,
               timeout=60, checks=[operator.check])
    assert get(kube, namespace, "secret", "alpha-postgres")["data"] == before


def test_a_spec_change_rolls_out(kube, namespace, venue, operator):
    gateway = get(kube, namespace, "deploy", "alpha-gateway")
    checksum = gateway["spec"]["template"]["metadata"]["annotations"][
        "tradingvenue.io/config-checksum"]
    body = venue_body(gateway={"replicas": 3})
    body["spec"]["instruments"].append(
        {"symbol": "SOL-USD", "id": 3, "tickSize": "0.001", "lotSize": "0.01",
         "minPrice": "0.001", "maxPrice": "10000", "maxQuantity": "100000"})
    kube.apply(body, namespace=namespace)

    def rolled():
        gateway = get(kube, namespace, "deploy", "alpha-gateway")
        annotations = gateway["spec"]["template"]["metadata"]["annotations"]
        return (gateway["spec"]["replicas"] == 3
                and annotations["tradingvenue.io/config-checksum"] != checksum)

    wait_until("the gateway rolled with the new config", rolled, timeout=60,
               checks=[operator.check])
    config = json.loads(get(kube, namespace, "cm", "alpha-config")["data"]["venue.json"])
    assert "SOL-USD" in [i["symbol"] for i in config["instruments"]]
    # SOL-USD (id 3) is on shard 3, partition 1: that engine gets it in its arguments.
    engine = get(kube, namespace, "sts", "alpha-engine-1")
    assert "3:1:10000000" in engine["spec"]["template"]["spec"]["containers"][0]["args"]
    venue = wait_ready(kube, namespace, operator)
    assert venue["status"]["observedGeneration"] == venue["metadata"]["generation"]


def test_deleting_the_venue_removes_everything_it_owned(kube, namespace, venue, operator):
    kube.run("delete", "tv", VENUE, "-n", namespace, "--timeout=60s")

    def gone():
        left = kube.json("get", "deploy,sts,svc,cm,secret,sa,pdb,netpol,pvc", "-n", namespace,
                         "-l", f"tradingvenue.io/venue={VENUE}")["items"]
        claims = kube.json("get", "pvc", "-n", namespace)["items"]
        return not left and not claims

    wait_until("the venue's children garbage-collected", gone, timeout=120)


# --- autoscaling end to end -------------------------------------------------------------


def test_submitters_follow_the_queue_up_and_down_without_flapping(kube, namespace, venue,
                                                                   operator, redis_url):
    queue = redis.Redis.from_url(redis_url)
    stream = Keys(VENUE).orders(1)
    seen: list[int] = []

    def replicas() -> int:
        value = get(kube, namespace, "deploy", "alpha-submitter")["spec"]["replicas"]
        if not seen or seen[-1] != value:
            seen.append(value)
        return value

    # 35 orders waiting at 10 per submitter: 4 submitters, at once.
    for n in range(35):
        queue.xadd(stream, {"cmd": b"order-%d" % n})
    wait_until("4 submitters", lambda: replicas() == 4, timeout=60, interval=0.3,
               checks=[operator.check])
    status = get(kube, namespace, "tv", VENUE)["status"]
    assert status["queueDepth"] == 35
    assert status["submitters"]["desired"] == 4
    assert status["submitters"]["reason"] in ("ScaledUp", "AtTarget")

    # The submitters' group reads and acknowledges everything: the queue drains.
    queue.xgroup_create(stream, SUBMITTERS_GROUP, id="0")
    for _, entries in queue.xreadgroup(SUBMITTERS_GROUP, "test", {stream: ">"}, count=100):
        queue.xack(stream, SUBMITTERS_GROUP, *[entry_id for entry_id, _ in entries])

    def stabilizing():
        replicas()
        return get(kube, namespace, "tv", VENUE)["status"]["submitters"]["reason"] == \
            "StabilizingDown"

    wait_until("the autoscaler holding while the queue stays low", stabilizing, timeout=30,
               interval=0.3, checks=[operator.check])
    assert replicas() == 4  # not yet: the window has not passed
    wait_until("back to 1 submitter", lambda: replicas() == 1, timeout=120, interval=0.3,
               checks=[operator.check])
    # Up once, then down one at a time: never back up, never skipping the damping.
    assert seen == [1, 4, 3, 2, 1]
    status = get(kube, namespace, "tv", VENUE)["status"]
    assert status["queueDepth"] == 0
    reasons = [e["reason"] for e in events_of(kube, namespace)]
    assert "ScaledUp" in reasons and "ScaledDown" in reasons and "StabilizingDown" in reasons


def test_paused_autoscaling_holds_the_submitters(kube, namespace, venue, operator, redis_url):
    kube.run("annotate", "tv", VENUE, "-n", namespace, "tradingvenue.io/autoscaling-paused=true")
    wait_until("paused", lambda: get(kube, namespace, "tv", VENUE)["status"]["submitters"]
               ["reason"] == "Paused", timeout=30, checks=[operator.check])
    queue = redis.Redis.from_url(redis_url)
    for n in range(35):
        queue.xadd(Keys(VENUE).orders(2), {"cmd": b"%d" % n})
    wait_until("the depth seen", lambda: get(kube, namespace, "tv", VENUE)["status"]
               ["queueDepth"] == 35, timeout=30, checks=[operator.check])
    assert get(kube, namespace, "deploy", "alpha-submitter")["spec"]["replicas"] == 1


def test_an_unreachable_queue_holds_the_submitters(kube, namespace, venue, operator,
                                                   redis_server):
    redis_server.stop()

    def held():
        venue = get(kube, namespace, "tv", VENUE)
        return (venue["status"]["submitters"]["reason"] == "QueueUnreachable"
                and conditions_of(venue)["QueueReady"]["status"] == "False")

    wait_until("the queue unreachable", held, timeout=30, checks=[operator.check])
    time.sleep(2)  # a few more ticks: still holding, not scaling to anything
    assert get(kube, namespace, "deploy", "alpha-submitter")["spec"]["replicas"] == 1
    assert conditions_of(get(kube, namespace, "tv", VENUE))["Ready"]["status"] == "False"


# --- the chart's RBAC is enough ---------------------------------------------------------


def _service_account_kubeconfig(kube, namespace: str, account: str, path: Path) -> str:
    token = kube.run("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    admin = kube.json("config", "view", "--raw", "--minify")
    cluster = admin["clusters"][0]["cluster"]
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "c", "user": account}}],
    }))
    return str(path)


def test_the_charts_rbac_is_all_the_operator_needs(kube, kubectl, namespace, crd, volumes,
                                                   queue_secret, tmp_path):
    helm = str(Path(kubectl).with_name("helm"))
    release = f"rbac-{namespace[-6:]}"
    rendered = subprocess.run(
        [helm, "template", release, str(ROOT / "charts" / "tradingvenue"), "-n", namespace,
         "--set", f"watchNamespaces={{{namespace}}}",
         "--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml",
         "--show-only", "templates/rbac-cluster-scope.yaml"],
        check=True, stdout=subprocess.PIPE, text=True).stdout
    kube.run("apply", "-n", namespace, "-f", "-", input=rendered)
    account = f"{release}-tradingvenue-operator"
    try:
        config = _service_account_kubeconfig(kube, namespace, account, tmp_path / "sa.kubeconfig")
        operator = start_operator(namespace, config, tmp_path / "operator.log")
        try:
            kube.apply(venue_body(), namespace=namespace)
            venue = wait_ready(kube, namespace, operator)
            assert conditions_of(venue)["QueueReady"]["status"] == "True"
            assert "Forbidden" not in operator.log.read_text()
            kube.run("delete", "tv", VENUE, "-n", namespace, "--timeout=60s")
        finally:
            operator.stop()
            print(operator.tail())
    finally:
        kube.run("delete", "clusterrole,clusterrolebinding", account, f"{account}-cluster-scope",
                 "--ignore-not-found", check=False)


# --- traces ---------------------------------------------------------------------------


def test_a_reconcile_is_traced_and_timed(kube, kubeconfig, namespace, crd, volumes,
                                        queue_secret, jaeger, tmp_path):
    """The operator exports a span per reconcile, naming what it applied, and counts
    reconciles in its /metrics."""
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    metrics_port = free_port()
    operator = OperatorProcess(tmp_path / "operator.log", kubeconfig, namespace, env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_endpoint, "OTEL_SERVICE_NAME": "",
        "TV_OPERATOR_METRICS_PORT": str(metrics_port)})
    try:
        operator.wait_alive()
        kube.apply(venue_body(), namespace=namespace)
        wanted = f"reconcile {namespace}/{VENUE}"

        def reconciled():
            spans = spans_of(jaeger.find("venue-operator", since))
            return [s for s in spans if s["name"] == wanted]
        [span, *_] = wait_until("a reconcile span in Jaeger", reconciled, timeout=90,
                                checks=[operator.check])
        # A list attribute: {"values": [{"stringValue": "Created StatefulSet ..."}, ...]}
        assert "Created StatefulSet alpha-postgres" in json.dumps(span["attrs"]["venue.actions"])
        assert span["attrs"]["tradingvenue.venue"] == VENUE
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                         timeout=10).read().decode()
        count = re.search(r"^venue_operator_reconcile_seconds_count (\S+)$", scraped, re.M)
        assert count and float(count.group(1)) >= 1, scraped
        # Its log: JSON lines; the reconcile's own carries the trace it was logged in.
        lines = [json.loads(line) for line in operator.log.read_text().splitlines()
                 if line.startswith("{")]
        traced = [line for line in lines if line.get("message", "").startswith("reconciled")]
        spans = {s["traceId"] for s in reconciled()}
        assert traced and all(line.get("trace_id") in spans for line in traced), lines[-5:]
    finally:
        kube.run("delete", "tv", "--all", "-n", namespace, "--timeout=60s", check=False)
        operator.stop()


def test_the_charts_service_monitor_finds_every_gateway(helm, tmp_path):
    """Off by default; on, it selects the Services the operator makes for gateways, on
    their port, at the path the gateway serves its metrics on."""
    from venue.api.app import create_app
    from venue_operator.render.gateway import gateway_service
    from venue_operator.render.python_pod import METRICS_PATH

    chart = str(ROOT / "charts" / "tradingvenue")

    def rendered(*flags: str) -> list[dict]:
        out = subprocess.run([helm, "template", "t", chart, *flags], capture_output=True,
                             text=True, check=True).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    assert not [d for d in rendered() if d["kind"] == "ServiceMonitor"]
    [monitor] = [d for d in rendered("--set", "serviceMonitor.enabled=true")
                 if d["kind"] == "ServiceMonitor"]
    body = venue_body(gateway={"replicas": 1, "serviceType": "ClusterIP"})
    service = gateway_service(body | {"metadata": {"name": VENUE, "namespace": "markets"}})
    wanted = monitor["spec"]["selector"]["matchLabels"]
    assert wanted.items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == METRICS_PATH
    assert METRICS_PATH in create_app().openapi()["paths"]
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
