"""The k8s test harness works: through KUBECONFIG only, with kubectl.

Against our own control plane the pods run on kwok nodes (no images are pulled); against
a user's cluster they run for real, so they use the tiny pause image. The engine
placement tests need engine nodes and skip on a cluster without any.
"""

from __future__ import annotations

import json
import subprocess

from venue.local.cluster import (
    ENGINE_NODE_LABEL,
    ENGINE_TAINT_KEY,
    wait_until,
)

PAUSE = "registry.k8s.io/pause:3.10"


def deployment(name: str, replicas: int, pod_spec_extra: dict | None = None) -> dict:
    spec = {
        "containers": [
            {
                "name": "main",
                "image": PAUSE,
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            }
        ],
        "terminationGracePeriodSeconds": 1,
    }
    spec.update(pod_spec_extra or {})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def engine_pod(name: str, tolerate: bool) -> dict:
    """A Guaranteed pod (integer CPUs, requests == limits, hugepages) for engine nodes."""
    resources = {"cpu": "2", "memory": "1Gi", "hugepages-2Mi": "64Mi"}
    spec = {
        "nodeSelector": {ENGINE_NODE_LABEL: "true"},
        "containers": [
            {
                "name": "engine",
                "image": PAUSE,
                "resources": {"requests": resources, "limits": resources},
            }
        ],
        "terminationGracePeriodSeconds": 1,
    }
    if tolerate:
        spec["tolerations"] = [
            {"key": ENGINE_TAINT_KEY, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def pods(kube, namespace: str, selector: str) -> list[dict]:
    return kube.json("get", "pods", "-n", namespace, "-l", selector)["items"]


def ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def condition(obj: dict, kind: str) -> dict | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c["type"] == kind:
            return c
    return None


def test_deployment_becomes_available(kube, namespace, ordinary_nodes, k8s_cluster):
    kube.apply(deployment("web", 2), namespace=namespace)
    kube.run(
        "wait", "-n", namespace, "deployment/web",
        "--for=condition=Available", "--timeout=120s",
        timeout=150,
    )  # fmt: skip

    dep = kube.json("get", "deployment", "web", "-n", namespace)
    assert dep["status"]["availableReplicas"] == 2
    running = pods(kube, namespace, "app=web")
    assert len(running) == 2
    for pod in running:
        assert pod["status"]["phase"] == "Running" and ready(pod), json.dumps(pod["status"])
        assert pod["status"].get("podIP")
        # Not tolerating the engine taint, they can only be on ordinary nodes.
        assert pod["spec"]["nodeName"] in ordinary_nodes
    if k8s_cluster.local:
        for pod in running:
            node = kube.json("get", "node", pod["spec"]["nodeName"])
            assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_engine_pod_lands_on_an_engine_node(kube, namespace, engine_nodes):
    kube.apply(engine_pod("engine-0", tolerate=True), namespace=namespace)
    kube.run(
        "wait", "-n", namespace, "pod/engine-0", "--for=condition=Ready", "--timeout=90s",
        timeout=120,
    )  # fmt: skip
    pod = kube.json("get", "pod", "engine-0", "-n", namespace)
    assert pod["spec"]["nodeName"] in engine_nodes
    assert pod["status"]["qosClass"] == "Guaranteed"
    node = kube.json("get", "node", pod["spec"]["nodeName"])
    assert node["metadata"]["labels"][ENGINE_NODE_LABEL] == "true"
    assert {"key": ENGINE_TAINT_KEY, "value": "true", "effect": "NoSchedule"} in node["spec"][
        "taints"
    ]
    assert "hugepages-2Mi" in node["status"]["allocatable"]
    assert "hugepages-1Gi" in node["status"]["allocatable"]


def test_pods_without_the_toleration_never_land_on_engine_nodes(
    kube, namespace, engine_nodes, ordinary_nodes
):
    # Asking for engine nodes without tolerating their taint: unschedulable.
    kube.apply(engine_pod("intruder", tolerate=False), namespace=namespace)
    # Plain pods, more than there are ordinary nodes: none of them on an engine node.
    replicas = len(ordinary_nodes) + len(engine_nodes) + 1
    kube.apply(deployment("plain", replicas), namespace=namespace)
    kube.run(
        "wait", "-n", namespace, "deployment/plain",
        "--for=condition=Available", "--timeout=120s",
        timeout=150,
    )  # fmt: skip
    placed = pods(kube, namespace, "app=plain")
    assert len(placed) == replicas
    for pod in placed:
        assert pod["spec"]["nodeName"] not in engine_nodes
        assert pod["spec"]["nodeName"] in ordinary_nodes

    def unschedulable():
        pod = kube.json("get", "pod", "intruder", "-n", namespace)
        scheduled = condition(pod, "PodScheduled")
        return scheduled and scheduled["status"] == "False" and pod

    pod = wait_until("the scheduler to reject pod intruder", unschedulable, timeout=60)
    scheduled = condition(pod, "PodScheduled")
    assert scheduled["reason"] == "Unschedulable"
    assert "untolerated taint" in scheduled["message"], scheduled["message"]
    assert not pod["spec"].get("nodeName")
    assert pod["status"]["phase"] == "Pending"


def test_deleting_a_deployment_garbage_collects_its_replicaset_and_pods(kube, namespace):
    kube.apply(deployment("doomed", 2), namespace=namespace)
    kube.run(
        "wait", "-n", namespace, "deployment/doomed",
        "--for=condition=Available", "--timeout=120s",
        timeout=150,
    )  # fmt: skip
    dep = kube.json("get", "deployment", "doomed", "-n", namespace)
    replicasets = kube.json("get", "replicasets", "-n", namespace, "-l", "app=doomed")["items"]
    assert len(replicasets) == 1
    rs = replicasets[0]
    (owner,) = rs["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner.get("controller")) == (
        "Deployment",
        dep["metadata"]["uid"],
        True,
    )
    children = pods(kube, namespace, "app=doomed")
    assert len(children) == 2
    for pod in children:
        (owner,) = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"]) == ("ReplicaSet", rs["metadata"]["uid"])

    # Background cascading: the Deployment goes at once, the garbage collector (in
    # kube-controller-manager) then deletes the ReplicaSet, and that its Pods.
    kube.run("delete", "deployment", "doomed", "-n", namespace, "--cascade=background")
    uids = {rs["metadata"]["uid"]} | {p["metadata"]["uid"] for p in children}

    def collected():
        left = kube.json("get", "replicasets,pods", "-n", namespace)["items"]
        return not any(o["metadata"]["uid"] in uids for o in left)

    wait_until("the garbage collector to delete the ReplicaSet and Pods", collected, timeout=90)
    assert kube.run("get", "deployment", "doomed", "-n", namespace, check=False).returncode != 0


def test_helm_installs_a_chart(helm, kube, namespace, tmp_path):
    # kubeVersion makes helm check the API server's /version (the ldflags in build.sh).
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: probe\nversion: 0.1.0\nkubeVersion: '>=1.30.0-0'\n"
    )
    (chart / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-probe\n"
        "data:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )

    def run_helm(*args: str) -> str:
        proc = subprocess.run(
            [helm, *args, "-n", namespace], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    run_helm("install", "p1", str(chart), "--wait", "--timeout", "60s")
    cm = kube.json("get", "configmap", "p1-probe", "-n", namespace)
    server = kube.json("version")["serverVersion"]["gitVersion"]
    assert cm["data"]["kube"] == server
    assert [r["name"] for r in json.loads(run_helm("list", "-o", "json"))] == ["p1"]
    run_helm("uninstall", "p1", "--wait")
    assert kube.run("get", "configmap", "p1-probe", "-n", namespace, check=False).returncode != 0
