"""Fixtures for tests that need a Kubernetes cluster, reached through KUBECONFIG only.

- $KUBECONFIG set in the environment: the tests run against that cluster (a user's own,
  or CI's). Nothing is started and no nodes are faked; tests that need engine nodes
  (label tradingvenue.io/engine-node=true, taint tradingvenue.io/engine=true:NoSchedule)
  skip when the cluster has none.
- Otherwise: one ControlPlane (cluster.py) for the session, built from Go modules by
  controlplane/build.sh and cached outside the repo, with 3 ordinary and 2 engine kwok
  nodes; os.environ["KUBECONFIG"] points at it for the session.

The first run builds the control plane (10-20 minutes on 2 cores); while it is not
built, the k8s tests get a longer pytest-timeout. Every test here is marked `k8s`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from venue.local import cluster

HERE = Path(__file__).resolve().parent

ORDINARY_NODES = 3
ENGINE_NODES = 2
BUILD_TIMEOUT = 3600  # seconds, for the first (cold) build


# As the session started: the session's own control plane sets $KUBECONFIG later.
_EXTERNAL_KUBECONFIG = os.environ.get("KUBECONFIG") or None


def _external_kubeconfig() -> str | None:
    return _EXTERNAL_KUBECONFIG


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "k8s: needs a Kubernetes cluster (tests/k8s)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    if not ours:
        return
    slow_start = _external_kubeconfig() is None and not cluster.is_built()
    for item in ours:
        item.add_marker(pytest.mark.k8s)
        if slow_start:
            # The session fixture builds the control plane inside the first test's setup.
            item.add_marker(pytest.mark.timeout(BUILD_TIMEOUT + 600))


@dataclass
class Cluster:
    kubeconfig: str
    local: bool  # our own ControlPlane with kwok nodes (False: the user's cluster)
    control_plane: object | None = None


@pytest.fixture(scope="session")
def k8s_cluster() -> Cluster:
    external = _external_kubeconfig()
    if external:
        yield Cluster(kubeconfig=external, local=False)
        return
    # A SIGTERM (timeout(1), CI stopping a job) would end pytest without any teardown,
    # leaving the temp dir behind: make it an interrupt, which pytest tears down after.
    previous_handler = signal.getsignal(signal.SIGTERM)
    if previous_handler is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
    cp = cluster.ControlPlane()
    previous = os.environ.get("KUBECONFIG")
    try:
        cp.start()
        cp.add_nodes(ORDINARY_NODES)
        cp.add_nodes(ENGINE_NODES, engine=True)
        os.environ["KUBECONFIG"] = str(cp.kubeconfig)
        yield Cluster(kubeconfig=str(cp.kubeconfig), local=True, control_plane=cp)
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        cp.stop()
        if previous_handler is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def external_kubeconfig() -> str | None:
    """The user's $KUBECONFIG as the session started (None: this machine's own planes)."""
    return _external_kubeconfig()


@pytest.fixture(scope="session")
def kubeconfig(k8s_cluster: Cluster) -> str:
    """Path of the kubeconfig; $KUBECONFIG points at it for the session."""
    return k8s_cluster.kubeconfig


@pytest.fixture(scope="session")
def kubectl() -> str:
    """Path of a kubectl: the cached one matching the control plane, else one on PATH."""
    if cluster.is_built():
        return str(cluster.bin_dir() / "kubectl")
    if _external_kubeconfig() and shutil.which("kubectl"):
        return shutil.which("kubectl")
    return str(cluster.build(timeout=BUILD_TIMEOUT) / "kubectl")


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of a helm: the cached, pinned one, else one on PATH."""
    if cluster.is_built():
        return str(cluster.bin_dir() / "helm")
    if _external_kubeconfig() and shutil.which("helm"):
        return shutil.which("helm")
    return str(cluster.build(timeout=BUILD_TIMEOUT) / "helm")


@pytest.fixture(scope="session")
def kube(kubectl: str, kubeconfig: str):
    """kubectl bound to the session's kubeconfig: kube.run(...), kube.json(...), kube.apply(...)."""
    return cluster.Kubectl(kubectl, kubeconfig)


@pytest.fixture
def namespace(kube, request: pytest.FixtureRequest) -> str:
    """A namespace of this test's own, deleted after it."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", name)
    try:
        # Pods cannot be created before the service account controller makes "default".
        cluster.wait_until(
            f"serviceaccount default in {name}",
            lambda: kube.run("get", "serviceaccount", "default", "-n", name, "-o", "name"),
            timeout=60,
        )
        yield name
    finally:
        kube.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def _nodes(kube, selector: str, untainted: bool = False) -> list[str]:
    names = []
    for node in kube.json("get", "nodes", "-l", selector)["items"]:
        spec = node["spec"]
        if spec.get("unschedulable"):
            continue
        hard = [t for t in spec.get("taints") or [] if t["effect"] in ("NoSchedule", "NoExecute")]
        if untainted and hard:
            continue
        names.append(node["metadata"]["name"])
    return names


@pytest.fixture(scope="session")
def engine_nodes(kube) -> list[str]:
    """Names of the engine nodes (label + taint); skips the test when there are none."""
    names = _nodes(kube, f"{cluster.ENGINE_NODE_LABEL}=true")
    if not names:
        pytest.skip(f"the cluster has no engine nodes ({cluster.ENGINE_NODE_LABEL}=true)")
    return names


@pytest.fixture(scope="session")
def ordinary_nodes(kube) -> list[str]:
    """Untainted schedulable nodes that are not engine nodes; skips when there are none."""
    names = _nodes(kube, f"{cluster.ENGINE_NODE_LABEL}!=true", untainted=True)
    if not names:
        pytest.skip("the cluster has no ordinary (non-engine) nodes")
    return names
