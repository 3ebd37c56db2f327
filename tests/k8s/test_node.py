"""The whole venue on a real Kubernetes node, installed the way a user installs it.

A control plane of its own with one real node (venue.local.node: containerd, CNI bridge,
kubelet with the static CPU manager and 2 MiB hugepages, kube-proxy, CoreDNS), reached
through its kubeconfig only. The images from `make images` are imported into the node's
containerd; the chart is installed with helm, so the operator runs in the cluster from
its image; the venue is applied with kubectl into a namespace that enforces the
`restricted` Pod Security Standard. Then what only a real node shows: orders through the
gateway's Service fill and land in the cluster's Postgres; the engine sits alone on its
exclusive CPU with its pools on hugepages; a force-deleted engine pod, a rolling gateway
and a rotated Redis password under load lose no accepted order.

Runs on this machine's own control plane only (root, containerd, CNI plugins; it skips
with the reason otherwise), not against a $KUBECONFIG cluster.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from venue.local import cluster, images, node
from venue.local.cluster import ControlPlaneError, Kubectl, wait_until

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tradingvenue"
SAMPLE = ROOT / "crds" / "samples" / "venue-one-node.yaml"
OPERATOR_NAMESPACE = "tradingvenue-system"
NAMESPACE = "markets"
VENUE = "solo"
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"
# The sample's one symbol and its grid: price 100.00, quantity 0.0001 (one lot).
SYMBOL = "BTC-USD"


@dataclass
class NodeCluster:
    kubeconfig: str
    kube: Kubectl
    node: node.RealNode
    helm: str
    env: dict[str, str] = field(default_factory=dict)


pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def node_cluster(external_kubeconfig) -> NodeCluster:
    if external_kubeconfig:
        pytest.skip("a real node is made on this machine's own control plane only")
    lacking = node.missing_tools()
    if lacking:
        pytest.skip(f"cannot run a real node here: missing {', '.join(lacking)}")
    network = node.NodeNetwork().create([cluster.SERVICE_CIDR, node.POD_CIDR])
    cp = cluster.ControlPlane(address=network.host_ip)
    real = None
    try:
        cp.start()
        real = node.RealNode(cp, network).start()
        kubeconfig = str(cp.kubeconfig)
        yield NodeCluster(kubeconfig=kubeconfig, kube=cp.kubectl(), node=real,
                          helm=str(cp.bin / "helm"),
                          env={**os.environ, "KUBECONFIG": kubeconfig})
    finally:
        if real is not None:
            real.stop()
        cp.stop()
        network.delete()


def _images_into_the_node(real: node.RealNode) -> None:
    """The venue and engine archives of `make images`, as a user loads them on a node
    without a registry; the node's Redis and Postgres from podman."""
    version = images.app_version()
    for image in images.IMAGES:
        archive = images.ARCHIVES / f"{image.name}-{version}.oci.tar"
        if not archive.exists():
            pytest.fail(f"{archive} is missing: `make images` builds it (make test does)")
        real.import_archive(archive)
    for ref in (node.REDIS_IMAGE, node.POSTGRES_IMAGE):
        real.import_podman_image(ref)


def _venue_manifest() -> dict:
    venue = yaml.safe_load(SAMPLE.read_text())
    # No registry here serves redis:7 or postgres:16: the node's own builds.
    venue["spec"]["redis"]["image"] = node.REDIS_IMAGE
    venue["spec"]["postgres"]["image"] = node.POSTGRES_IMAGE
    return venue


def _pods(kube: Kubectl, namespace: str) -> list[dict]:
    return kube.json("get", "pods", "-n", namespace)["items"]


def _venue_ready(kube: Kubectl) -> bool:
    venue = kube.json("get", "tv", VENUE, "-n", NAMESPACE)
    for condition in (venue.get("status") or {}).get("conditions", []):
        if condition["type"] == "Ready":
            return condition["status"] == "True"
    return False


def _describe(kube: Kubectl) -> str:
    venue = kube.run("get", "tv", VENUE, "-n", NAMESPACE, "-o", "json", check=False).stdout
    conditions = (json.loads(venue).get("status") or {}).get("conditions", []) if venue else []
    shown = ["\n".join(f"{c['type']}: {c['status']} {c.get('reason')}: {c.get('message')}"
                       for c in conditions),
             kube.run("get", "tv,pods,pvc", "-n", NAMESPACE, "-o", "wide", check=False).stdout,
             kube.run("get", "pods", "-n", OPERATOR_NAMESPACE, check=False).stdout,
             # The operator's last words, when it is restarting.
             kube.run("logs", "-n", OPERATOR_NAMESPACE, "deploy/tradingvenue-tradingvenue-operator",
                      "--previous", "--tail=40", check=False).stdout[-4000:],
             kube.run("get", "events", "-n", NAMESPACE, "--sort-by=.lastTimestamp",
                      check=False).stdout[-4000:]]
    return "\n".join(shown)


def _wait_venue_ready(kube: Kubectl, real: node.RealNode, timeout: float = 300) -> None:
    try:
        wait_until(f"venue {VENUE} Ready", lambda: _venue_ready(kube), timeout=timeout,
                   interval=2, checks=[real.check])
    except ControlPlaneError as error:
        raise ControlPlaneError(f"{error}\n{_describe(kube)}") from None


@dataclass
class Venue:
    cluster: NodeCluster
    url: str
    keys: tuple[str, str]  # the bootstrap key, and a second account's: they trade

    @property
    def kube(self) -> Kubectl:
        return self.cluster.kube

    def psql(self, sql: str) -> list[list[str]]:
        out = self.kube.run("exec", "-n", NAMESPACE, f"{VENUE}-postgres-0", "--", "psql",
                            "-U", "venue", "-d", "venue", "-At", "-F", "\t", "-c", sql).stdout
        return [line.split("\t") for line in out.splitlines() if line]


def _secret(kube: Kubectl, name: str, item: str) -> str:
    data = kube.json("get", "secret", name, "-n", NAMESPACE)["data"][item]
    return base64.b64decode(data).decode()


@pytest.fixture(scope="module")
def venue(node_cluster: NodeCluster) -> Venue:
    kube, real = node_cluster.kube, node_cluster.node
    _images_into_the_node(real)
    # 1. The chart, into a namespace enforcing the restricted standard. A one-node
    #    cluster's only allocatable CPU goes to the engine: the operator asks for none.
    kube.run("create", "namespace", OPERATOR_NAMESPACE)
    kube.run("label", "namespace", OPERATOR_NAMESPACE, RESTRICTED)
    helm = subprocess.run(
        [node_cluster.helm, "install", "tradingvenue", str(CHART), "-n", OPERATOR_NAMESPACE,
         "--set", "resources.requests.cpu=0", "--wait", "--timeout", "180s"],
        env=node_cluster.env, capture_output=True, text=True, timeout=240)
    assert helm.returncode == 0, helm.stderr + helm.stdout + _describe(kube)
    # 2. The venue.
    kube.run("create", "namespace", NAMESPACE)
    kube.run("label", "namespace", NAMESPACE, RESTRICTED)
    kube.apply(_venue_manifest(), namespace=NAMESPACE)
    _wait_venue_ready(kube, real)
    # 3. The bootstrap key, as README.md tells a user; a second account to trade with.
    bootstrap = _secret(kube, f"{VENUE}-api-key", "key")
    created = kube.run("exec", "-n", NAMESPACE, f"deploy/{VENUE}-gateway", "-c", "gateway",
                       "--", "venue", "accounts", "create", "second").stdout
    second = re.search(r"api key \(shown once\): (\S+)", created).group(1)
    ip = kube.json("get", "svc", f"{VENUE}-gateway", "-n", NAMESPACE)["spec"]["clusterIP"]
    return Venue(node_cluster, f"http://{ip}:8000", (bootstrap, second))


# --- orders -----------------------------------------------------------------------------


_ids = itertools.count(1)


def order(side: str, client_order_id: str, price: str = "100.00") -> dict:
    return {"symbol": SYMBOL, "side": side, "type": "limit", "price": price,
            "quantity": "0.0001", "clientOrderId": client_order_id}


def post(client: httpx.Client, url: str, key: str, body: dict) -> httpx.Response:
    return client.post(f"{url}/v1/orders", json=body,
                       headers={"Authorization": f"Bearer {key}"}, timeout=10)


def post_until_answered(venue: Venue, key: str, body: dict, timeout: float = 60
                        ) -> httpx.Response:
    """POST, sending the same order again after a connection error, as a client does: the
    clientOrderId makes a repeat harmless. (Just after pods roll, the Service may still
    send a new connection to an address that is gone until kube-proxy catches up.)"""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with httpx.Client() as client:
                return post(client, venue.url, key, body)
        except httpx.TransportError as error:
            if time.monotonic() > deadline:
                raise
            print(f"POST {body['clientOrderId']}: {type(error).__name__}; sending it again")
            time.sleep(1)


def _filled(venue: Venue, client_ids: list[str]) -> bool:
    quoted = ",".join(f"'{c}'" for c in client_ids)
    rows = venue.psql(f"SELECT status FROM orders WHERE client_order_id IN ({quoted})")
    return len(rows) == len(client_ids) and all(r[0] == "filled" for r in rows)


def cross(venue: Venue, tag: str) -> None:
    """Two crossing orders, one per account, through the gateway's Service; both fill.
    Orders a load left resting sit at 100.00 on one side: the pair trades away from them
    (the first rests, the second meets it), so they meet each other and nothing else."""
    resting = {row[0] for row in venue.psql(
        "SELECT DISTINCT side FROM orders WHERE status IN ('new', 'partially_filled')")}
    price, sides = ("150.00", ("sell", "buy")) if "buy" in resting else ("50.00", ("buy", "sell"))
    ids = [f"{tag}-{side}" for side in sides]
    for key, side, client_id in zip(venue.keys, sides, ids):
        answer = post_until_answered(venue, key, order(side, client_id, price))
        assert answer.status_code == 202, answer.text
    wait_until(f"orders {ids} filled in Postgres", lambda: _filled(venue, ids), timeout=60)


class Load:
    """Crossing orders from both accounts, as fast as one connection each allows, until
    stopped; remembers every clientOrderId answered 202 and counts the other answers."""

    def __init__(self, venue: Venue, tag: str) -> None:
        self.venue = venue
        self.tag = tag
        self.accepted: list[str] = []
        self.answers: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(key, side), daemon=True)
                         for key, side in zip(venue.keys, ("buy", "sell"))]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, key: str, side: str) -> None:
        client = httpx.Client()
        while not self._stop.is_set():
            client_id = f"{self.tag}-{side}-{next(_ids)}"
            try:
                answer = post(client, self.venue.url, key, order(side, client_id))
            except httpx.HTTPError as error:
                # A closed connection or a refusal: the client knows it was not accepted
                # (or may retry with the same clientOrderId); never counted as accepted.
                self.answers[type(error).__name__] += 1
                client.close()
                client = httpx.Client()
                time.sleep(0.05)
                continue
            self.answers[str(answer.status_code)] += 1
            if answer.status_code == 202:
                self.accepted.append(client_id)
            else:
                time.sleep(0.05)
        client.close()

    def wait_for(self, accepted: int, timeout: float = 60) -> None:
        wait_until(f"{accepted} orders accepted under load ({self.answers})",
                   lambda: len(self.accepted) >= accepted, timeout=timeout)

    def audit(self, timeout: float = 180) -> dict:
        """Every accepted order in Postgres, once: {accepted, stored, lost, duplicated}."""
        def stored() -> Counter[str]:
            rows = self.venue.psql(
                f"SELECT client_order_id FROM orders WHERE client_order_id LIKE '{self.tag}-%'")
            return Counter(r[0] for r in rows)
        accepted = set(self.accepted)
        try:
            wait_until(f"the {len(accepted)} accepted orders of {self.tag} in Postgres",
                       lambda: accepted <= set(stored()), timeout=timeout, interval=2)
        except ControlPlaneError:
            pass  # the audit below says what is missing
        counted = stored()
        return {"accepted": len(accepted), "stored": sum(counted.values()),
                "lost": len(accepted - set(counted)),
                "duplicated": sum(n - 1 for n in counted.values() if n > 1),
                "answers": dict(self.answers)}


def _live_pods(venue: Venue, prefix: str) -> list[dict]:
    """The pods named prefix* that are not being deleted."""
    return [p for p in _pods(venue.kube, NAMESPACE)
            if p["metadata"]["name"].startswith(prefix) and
            not p["metadata"].get("deletionTimestamp")]


def _pod(venue: Venue, prefix: str) -> dict:
    pods = _live_pods(venue, prefix)
    assert pods, f"no pod {prefix}*"
    return pods[0]


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions", []))


# --- the tests, in the order a user meets them ------------------------------------------


def test_orders_fill_through_the_gateway_service(venue):
    cross(venue, "first")
    trades = venue.psql("SELECT count(*) FROM trades")
    assert int(trades[0][0]) >= 1


def test_every_pod_passes_the_restricted_standard(venue):
    # Both namespaces enforce it (their pods were admitted); a server-side dry run of the
    # label lists any running pod that would not be.
    for namespace in (NAMESPACE, OPERATOR_NAMESPACE):
        proc = venue.kube.run("label", "--dry-run=server", "--overwrite", "namespace",
                              namespace, RESTRICTED)
        assert "violate" not in proc.stderr.lower(), proc.stderr
        labels = venue.kube.json("get", "namespace", namespace)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def _cpus_allowed(venue: Venue, pod: dict, container: str) -> str:
    status = venue.kube.run("exec", "-n", pod["metadata"]["namespace"], pod["metadata"]["name"],
                            "-c", container, "--", "cat", "/proc/1/status").stdout
    return re.search(r"^Cpus_allowed_list:\s*(\S+)", status, re.M).group(1)


def _cpu_set(text: str) -> set[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def test_the_engine_is_pinned_to_its_exclusive_cpu_on_hugepages(venue):
    engine = _pod(venue, f"{VENUE}-engine-0-")
    assert engine["status"]["qosClass"] == "Guaranteed"
    pinned = _cpu_set(_cpus_allowed(venue, engine, "engine"))
    assert pinned == {1}, pinned  # CPU 0 is reservedSystemCPUs
    others = []
    for namespace in (NAMESPACE, OPERATOR_NAMESPACE):
        for pod in _pods(venue.kube, namespace):
            if pod["metadata"]["uid"] == engine["metadata"]["uid"]:
                continue
            for container in pod["spec"]["containers"]:
                allowed = _cpu_set(_cpus_allowed(venue, pod, container["name"]))
                others.append((pod["metadata"]["name"], container["name"], allowed))
    assert others and all(not (allowed & pinned) for _, _, allowed in others), others
    log = venue.kube.run("logs", "-n", NAMESPACE, engine["metadata"]["name"]).stdout
    assert "matching thread pinned to CPU 1 (allowed CPUs: 1" in log, log
    assert "on 2 MiB hugepages" in log, log
    mounts = venue.kube.run("exec", "-n", NAMESPACE, engine["metadata"]["name"], "--", "cat",
                            "/proc/1/mounts").stdout
    assert re.search(r"^\S+ /dev/hugepages hugetlbfs .*pagesize=2M", mounts, re.M), mounts


def test_a_force_deleted_engine_comes_back_from_its_journal_losing_nothing(venue):
    before = _pod(venue, f"{VENUE}-engine-0-")
    with Load(venue, "engine-kill") as load:
        load.wait_for(200)
        venue.kube.run("delete", "pod", "-n", NAMESPACE, before["metadata"]["name"],
                       "--grace-period=0", "--force")
        # Between the force delete and the ReplicaSet's replacement there is no pod at all.
        wait_until("a new engine pod Ready", lambda: any(
            pod["metadata"]["uid"] != before["metadata"]["uid"] and _ready(pod)
            for pod in _live_pods(venue, f"{VENUE}-engine-0-")), timeout=180, interval=1)
        accepted = len(load.accepted)
        load.wait_for(accepted + 200, timeout=120)
    audit = load.audit()
    print("engine force-deleted:", json.dumps(audit))
    assert audit["lost"] == 0 and audit["duplicated"] == 0, audit
    log = venue.kube.run("logs", "-n", NAMESPACE, _pod(venue, f"{VENUE}-engine-0-")
                         ["metadata"]["name"]).stdout
    assert re.search(r"recovered in \d+ ms: .*[1-9]\d* commands", log), log
    _wait_venue_ready(venue.kube, venue.cluster.node)


def _rolled_out(venue: Venue, kind: str, name: str) -> bool:
    obj = venue.kube.json("get", kind, name, "-n", NAMESPACE)
    status, wanted = obj.get("status") or {}, obj["spec"].get("replicas", 1)
    if status.get("observedGeneration", 0) < obj["metadata"]["generation"]:
        return False
    if kind == "statefulset":
        return (status.get("updateRevision") == status.get("currentRevision")
                and status.get("readyReplicas", 0) == wanted)
    return (status.get("updatedReplicas", 0) == wanted == status.get("replicas", 0)
            and status.get("availableReplicas", 0) == wanted)


def test_a_rolling_gateway_update_loses_no_accepted_order(venue):
    gateway = f"{VENUE}-gateway"
    before = {p["metadata"]["uid"] for p in _pods(venue.kube, NAMESPACE)
              if p["metadata"]["name"].startswith(gateway)}
    with Load(venue, "gateway-roll") as load:
        load.wait_for(200)
        venue.kube.run("patch", "tv", VENUE, "-n", NAMESPACE, "--type=merge", "-p", json.dumps(
            {"spec": {"gateway": {"resources": {"requests": {"memory": "257Mi"},
                                                "limits": {"memory": "513Mi"}}}}}))
        wait_until("the gateway rolled", lambda: _rolled_out(venue, "deployment", gateway)
                   and not before & {p["metadata"]["uid"] for p in _pods(venue.kube, NAMESPACE)
                                     if p["metadata"]["name"].startswith(gateway)},
                   timeout=180, interval=1)
        accepted = len(load.accepted)
        load.wait_for(accepted + 200, timeout=120)
    audit = load.audit()
    print("gateway rolled:", json.dumps(audit))
    assert audit["lost"] == 0 and audit["duplicated"] == 0, audit


def test_rotating_the_redis_password_rolls_its_users_and_trading_goes_on(venue):
    kube = venue.kube
    users = {"statefulset": [f"{VENUE}-redis"],
             "deployment": [f"{VENUE}-gateway", f"{VENUE}-submitter", f"{VENUE}-writer"]}

    def templates() -> dict[str, str]:
        return {name: json.dumps(kube.json("get", kind, name, "-n", NAMESPACE)
                                 ["spec"]["template"]["metadata"].get("annotations"))
                for kind, names in users.items() for name in names}

    before = templates()
    old_url = _secret(kube, f"{VENUE}-redis", "url")
    password = secrets.token_hex(24)
    new_url = re.sub(r"//:[^@]*@", f"//:{password}@", old_url)
    kube.run("patch", "secret", f"{VENUE}-redis", "-n", NAMESPACE, "--type=merge", "-p",
             json.dumps({"stringData": {"password": password, "url": new_url}}))
    wait_until("every user of the Redis Secret rolled", lambda: all(
        before[name] != after for name, after in templates().items()), timeout=60)
    wait_until("the rollouts done", lambda: all(
        _rolled_out(venue, kind, name) for kind, names in users.items() for name in names),
        timeout=300, interval=2)
    _wait_venue_ready(kube, venue.cluster.node)
    cross(venue, "after-rotation")
    # The old password no longer opens the queue.
    redis = _pod(venue, f"{VENUE}-redis-0")["metadata"]["name"]
    refused = kube.run("exec", "-n", NAMESPACE, redis, "--", "redis-cli", "-u", old_url,
                       "--no-auth-warning", "ping", check=False)
    assert "PONG" not in refused.stdout, refused.stdout


# --- NetworkPolicies, enforced by the node's kube-router ---------------------------------

# Tries a TCP connection to each host:port of argv[1:]; prints {target: open | refused |
# timeout | error: ...} as JSON. Run with the python of the venue image.
_REACH = """
import json, socket, sys
seen = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        seen[target] = "open"
    except ConnectionRefusedError:
        seen[target] = "refused"
    except TimeoutError:
        seen[target] = "timeout"
    except OSError as error:
        seen[target] = f"error: {error}"
print(json.dumps(seen))
"""


def _reach(kube: Kubectl, namespace: str, pod: str, targets: list[str],
           container: str | None = None) -> dict[str, str]:
    which = ["-c", container] if container else []
    out = kube.run("exec", "-n", namespace, pod, *which, "--", "python3", "-c", _REACH,
                   *targets).stdout
    return json.loads(out.strip().splitlines()[-1])


def _probe_pod(kube: Kubectl, namespace: str, name: str, labels: dict[str, str]) -> str:
    """A pod of the venue image that runs nothing of the venue, admitted under the
    restricted standard; returns its name once it runs."""
    kube.apply({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe",
                "image": images.IMAGES[0].ref(images.app_version()),
                "imagePullPolicy": "Never",
                "command": ["python3", "-c", "import time; time.sleep(3600)"],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}}}]}},
        namespace=namespace)
    wait_until(f"pod {namespace}/{name} running", lambda: kube.json(
        "get", "pod", name, "-n", namespace)["status"].get("phase") == "Running",
        timeout=120, interval=1)
    return name


def test_only_the_venue_reaches_its_engine_redis_and_postgres(venue):
    """The operator's NetworkPolicies hold on a node that enforces them: a pod in another
    namespace, and a pod of the venue's own namespace that is not one of its parts, reach
    the gateway (no policy) but neither the engine, Redis nor Postgres, by Service or by
    pod address, though both wear the operator's label; each of the gateway, submitter
    and writer still reaches all three, and the operator Redis.
    Last in the file, so the pods the rotations above made are the ones checked."""
    kube = venue.kube
    stores = {"engine-0": 50051, "redis": 6379, "postgres": 5432}
    services = {part: f"{VENUE}-{part}.{NAMESPACE}.svc.{node.CLUSTER_DOMAIN}:{port}"
                for part, port in stores.items()}
    pods = {part: f"{_pod(venue, f'{VENUE}-{part}')['status']['podIP']}:{port}"
            for part, port in stores.items()}
    guarded = [*services.values(), *pods.values()]
    gateway = f"{VENUE}-gateway.{NAMESPACE}.svc.{node.CLUSTER_DOMAIN}:8000"

    # The venue's own parts, each as it runs now.
    for part in ("gateway", "submitter", "writer"):
        pod = _pod(venue, f"{VENUE}-{part}-")["metadata"]["name"]
        seen = _reach(kube, NAMESPACE, pod, guarded, container=part)
        assert set(seen.values()) == {"open"}, (part, seen)
    # The operator reads queue depth from Redis, from its own namespace.
    seen = _reach(kube, OPERATOR_NAMESPACE, "deploy/tradingvenue-tradingvenue-operator",
                  [services["redis"], pods["redis"]])
    assert set(seen.values()) == {"open"}, seen
    # The gateway's reads of the engine pass its policy: the book, from the engine.
    with httpx.Client() as client:
        book = client.get(f"{venue.url}/v1/books/{SYMBOL}", timeout=10)
    assert book.status_code == 200, book.text

    # Outsiders, dressed as the operator: its label admits only its own namespace's pods.
    outside = "outsiders"
    kube.run("create", "namespace", outside)
    kube.run("label", "namespace", outside, RESTRICTED)
    impostor = {"app": "probe", "app.kubernetes.io/name": "tradingvenue-operator"}
    try:
        probes = [(outside, _probe_pod(kube, outside, "probe", impostor)),
                  (NAMESPACE, _probe_pod(kube, NAMESPACE, "probe", impostor))]
        for namespace, pod in probes:
            seen = _reach(kube, namespace, pod, [gateway, *guarded])
            assert seen.pop(gateway) == "open", (namespace, seen)
            # kube-router rejects (refused); a dropped packet would time out. Anything
            # else (a name that does not resolve, say) proves nothing.
            assert set(seen.values()) <= {"refused", "timeout"}, (namespace, seen)
    finally:
        kube.run("delete", "pod", "probe", "-n", NAMESPACE, "--grace-period=0", "--force",
                 check=False)
        kube.run("delete", "namespace", outside, "--wait=false", check=False)
