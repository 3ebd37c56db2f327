"""A real Kubernetes control plane on this machine, for the operator's tests.

ControlPlane runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
(fake nodes whose pods go Running/Ready without a kubelet) from binaries that
controlplane/build.sh builds from Go modules and caches by version outside the repo.
Everything listens on 127.0.0.1 free ports and lives in a temp dir; the only way in is
the kubeconfig it writes (admin client certificate, system:masters), so tests written
against it also run against any cluster a user points KUBECONFIG at.

    with ControlPlane() as cp:
        cp.add_nodes(3)
        cp.add_nodes(2, engine=True)
        subprocess.run([cp.kubectl_path, "--kubeconfig", cp.kubeconfig, "get", "nodes"])

Set TV_K8S_KEEP=1 to keep the temp dir (logs, certs, etcd data) after stop().
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from venue.local.process import free_port, with_parent_death_signal

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE / "controlplane" / "build.sh"

# What the operator's engine pods target (see DESIGN.md, "The operator").
ENGINE_NODE_LABEL = "tradingvenue.io/engine-node"
ENGINE_TAINT_KEY = "tradingvenue.io/engine"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_CIDR: the kubernetes Service
POD_CIDR = "10.244.0.1/16"  # kwok hands out fake pod IPs from here


class ControlPlaneError(RuntimeError):
    pass


# --- building ------------------------------------------------------------------------


def build(timeout: float = 3600) -> Path:
    """Run build.sh (instant when cached) and return the bin dir."""
    proc = subprocess.run(
        ["bash", str(BUILD_SH)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise ControlPlaneError(
            f"{BUILD_SH} failed ({proc.returncode}):\n{_tail_text(proc.stderr, 60)}"
        )
    return Path(proc.stdout.strip().splitlines()[-1])


def bin_dir() -> Path:
    """Where build.sh puts (or has put) the binaries, without building anything."""
    out = subprocess.run(
        ["bash", str(BUILD_SH), "--print"], stdout=subprocess.PIPE, text=True, check=True
    ).stdout
    return Path(out.strip())


def is_built() -> bool:
    return subprocess.run(["bash", str(BUILD_SH), "--check"]).returncode == 0


# --- processes -----------------------------------------------------------------------


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


_ERROR_LINE = re.compile(r"^(Error:|[EF]\d{4} |panic:|fatal)|\"level\":\"(error|fatal|panic)\"|level=ERROR")


def _tail(path: Path, lines: int = 40) -> str:
    """The log's last lines, after its first error lines when those are further up."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    tail = text[-lines:]
    errors = [line for line in text[:-lines] if _ERROR_LINE.search(line)][:5]
    if errors:
        return "\n".join([*errors, "...", *tail])
    return "\n".join(tail)


def _die_with_parent(argv: Sequence[str]) -> list[str]:
    """argv that gets SIGKILL if the test process dies without cleaning up."""
    return with_parent_death_signal(argv, sig="KILL")


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise ControlPlaneError(
                f"{self.name} exited with {self.popen.returncode}; its log "
                f"({self.log}; kept with TV_K8S_KEEP=1):\n{_tail(self.log)}"
            )

    def stop(self, grace: float = 10.0) -> None:
        if not self.alive():
            return
        # Own session (start_new_session), so the group is just this process and
        # anything it started.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def spawn(name: str, argv: list[str], log: Path, cwd: Path) -> _Proc:
    """argv in a session of its own, output appended to `log`, killed if we die."""
    with open(log, "ab") as out:
        popen = subprocess.Popen(_die_with_parent(argv), stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
    return _Proc(name, popen, log)


# --- certificates ----------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        ["openssl", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if proc.returncode != 0:
        raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{proc.stdout}")


_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
CLIENT_EXT = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
              "extendedKeyUsage=clientAuth\n")


def make_leaf(pki: Path, name: str, subject: str, ext: str = CLIENT_EXT, ca: str = "ca") -> None:
    """<name>.key and <name>.crt in `pki`, signed by <ca>.crt (a client cert by default)."""
    (pki / f"{name}.ext").write_text(ext)
    _openssl("req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
             cwd=pki)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "3650", "-sha256",
        "-extfile", f"{name}.ext",
        cwd=pki,
    )  # fmt: skip


def _make_pki(pki: Path, address: str) -> None:
    """CA, API server serving cert, client certs, service-account key pair (openssl)."""
    pki.mkdir(parents=True)
    ec = _EC

    def leaf(name: str, subject: str, ext: str, ca: str = "ca") -> None:
        make_leaf(pki, name, subject, ext, ca)

    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
        "-subj", "/CN=tradingvenue-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=pki,
    )  # fmt: skip

    sans = ",".join(
        [
            "IP:127.0.0.1",
            f"IP:{address}",
            f"IP:{SERVICE_IP}",
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ]
    )
    leaf(
        "apiserver",
        "/CN=kube-apiserver",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={sans}\n",
    )
    client_ext = CLIENT_EXT
    leaf("admin", "/O=system:masters/CN=kubernetes-admin", client_ext)
    # What the API server presents to kubelets (logs, exec, port-forward).
    leaf("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client",
         client_ext)
    # The identities the default RBAC bindings expect.
    leaf("controller-manager", "/CN=system:kube-controller-manager", client_ext)
    leaf("scheduler", "/CN=system:kube-scheduler", client_ext)
    # The aggregation layer's front proxy: a CA of its own and the apiserver's client cert.
    _openssl(
        "req", "-x509", *ec, "-keyout", "front-proxy-ca.key", "-out", "front-proxy-ca.crt",
        "-days", "3650", "-subj", "/CN=tradingvenue-test-front-proxy-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=pki,
    )  # fmt: skip
    leaf("front-proxy-client", "/CN=front-proxy-client", client_ext, ca="front-proxy-ca")
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str) -> str:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "tradingvenue-test",
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
            }
        ],
        "contexts": [
            {"name": "tradingvenue-test", "context": {"cluster": "tradingvenue-test", "user": user}}
        ],
        "current-context": "tradingvenue-test",
    }
    return json.dumps(config, indent=2)  # JSON is YAML


# --- kubectl -----------------------------------------------------------------------------


@dataclass
class Kubectl:
    """kubectl through a kubeconfig (None: whatever $KUBECONFIG / ~/.kube/config say)."""

    path: str
    kubeconfig: str | None = None

    def _argv(self, args: Sequence[str]) -> list[str]:
        argv = [self.path]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        return argv + list(args)

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self._argv(args),
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def json(self, *args: str, timeout: float = 60) -> Any:
        return json.loads(self.run(*args, "-o", "json", timeout=timeout).stdout)

    def apply(self, *objects: dict, namespace: str | None = None) -> None:
        ns = ["-n", namespace] if namespace else []
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.run("apply", *ns, "-f", "-", input=json.dumps(doc))

    def create(self, *objects: dict, namespace: str | None = None) -> None:
        ns = ["-n", namespace] if namespace else []
        doc = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
        self.run("create", *ns, "-f", "-", input=json.dumps(doc))


def wait_until(what: str, predicate, timeout: float = 60, interval: float = 0.5, checks=()) -> Any:
    """Poll predicate() until it returns something truthy; run checks() each round."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        for check in checks:
            check()
        try:
            value = predicate()
            if value:
                return value
            last_exc = None
        except (ControlPlaneError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            last_exc = exc
        if time.monotonic() > deadline:
            detail = f": last error: {last_exc}" if last_exc else ""
            raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


class OperatorProcess:
    """`python -m venue_operator` as a child process, its liveness endpoint on a free port
    and its log in a file: for the operator's tests and `venue bench operator`."""

    def __init__(self, log: Path, kubeconfig: str | None = None, namespace: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = log
        environment = {**os.environ, **(env or {}),
                       "TV_OPERATOR_LIVENESS": f"http://127.0.0.1:{self.port}/healthz"}
        if kubeconfig:
            environment["KUBECONFIG"] = kubeconfig
        argv = [sys.executable, "-m", "venue_operator"]
        if namespace:
            argv += ["--namespace", namespace]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                _die_with_parent(argv), env=environment, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.process.pid

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_alive(self, timeout: float = 60) -> None:
        wait_until("the operator's liveness endpoint", self.alive, timeout=timeout,
                   checks=[self.check])

    def check(self) -> None:
        if self.process.poll() is not None:
            raise ControlPlaneError(f"the operator exited ({self.process.returncode}); its "
                                    f"log ({self.log}):\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"(no log: {error})"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


# --- the control plane ------------------------------------------------------------------


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok."""

    workdir: Path | None = None
    start_timeout: float = 120.0
    # Where the API server listens. 127.0.0.1 for kwok nodes only; a real node (node.py)
    # in a network namespace of its own reaches it on the host's end of its veth pair,
    # which is then also the address the kubernetes Service sends pods to.
    address: str = "127.0.0.1"
    keep: bool = field(default_factory=lambda: os.environ.get("TV_K8S_KEEP") == "1")

    bin: Path = field(init=False)
    kubeconfig: Path = field(init=False)
    server: str = field(init=False)
    _procs: list[_Proc] = field(default_factory=list, init=False)
    _own_workdir: bool = field(default=False, init=False)
    _nodes: dict[str, int] = field(default_factory=dict, init=False)

    # -- lifecycle

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def kubectl_path(self) -> Path:
        return self.bin / "kubectl"

    def kubectl(self) -> Kubectl:
        return Kubectl(str(self.kubectl_path), str(self.kubeconfig))

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def start(self) -> ControlPlane:
        self.bin = build()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="tv-k8s-"))
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        w = self.workdir
        pki = w / "pki"
        _make_pki(pki, self.address)

        # etcd
        etcd_client, etcd_peer = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_client}"
        etcd = self._spawn(
            "etcd",
            [
                "--name=default",
                f"--data-dir={w / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=default=http://127.0.0.1:{etcd_peer}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync=true",  # test data: speed over durability
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ],
        )
        wait_until(
            "etcd /health",
            lambda: json.loads(_http_get(f"{etcd_url}/health")).get("health") == "true",
            timeout=30,
            checks=[etcd.check],
        )

        # kube-apiserver
        port = free_port()
        self.server = f"https://{self.address}:{port}"
        if self.address == "127.0.0.1":
            # No kubelets, and the Endpoints of the kubernetes Service may not be a
            # loopback address: do not try to publish one.
            publish = ["--endpoint-reconciler-type=none"]
        else:
            publish = [f"--advertise-address={self.address}"]
        apiserver = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.address}",
                f"--secure-port={port}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                *publish,
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--cert-dir={pki}",
                f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                "--v=1",
            ],
        )
        self.kubeconfig = w / "kubeconfig"
        self.kubeconfig.write_text(
            _kubeconfig(self.server, pki / "ca.crt", pki / "admin.crt", pki / "admin.key", "admin")
        )
        self.kubeconfig.chmod(0o600)
        for who in ("controller-manager", "scheduler"):
            path = w / f"{who}.kubeconfig"
            path.write_text(
                _kubeconfig(
                    self.server, pki / "ca.crt", pki / f"{who}.crt", pki / f"{who}.key", who
                )
            )
            path.chmod(0o600)

        tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        tls.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        wait_until(
            "kube-apiserver /readyz",
            lambda: _http_get(f"{self.server}/readyz", tls) == "ok",
            timeout=self.start_timeout,
            checks=[etcd.check, apiserver.check],
        )

        # kube-controller-manager, kube-scheduler, kwok
        kcm_kubeconfig = w / "controller-manager.kubeconfig"
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={kcm_kubeconfig}",
                f"--authentication-kubeconfig={kcm_kubeconfig}",
                f"--authorization-kubeconfig={kcm_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--controllers=*",  # the defaults: GC, deployment, replicaset, statefulset, ...
                "--concurrent-gc-syncs=20",
                # A claim meets the volume made for it (node.HostPathVolumes, a
                # provisioner's stand-in) at the binder's next sync: within a second, not
                # the default 15 (a venue's Postgres and engines wait on it).
                "--pvclaimbinder-sync-period=1s",
                "--v=1",
            ],
        )
        sched_kubeconfig = w / "scheduler.kubeconfig"
        self._spawn(
            "kube-scheduler",
            [
                f"--kubeconfig={sched_kubeconfig}",
                f"--authentication-kubeconfig={sched_kubeconfig}",
                f"--authorization-kubeconfig={sched_kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                # A pod found unschedulable is tried again at the latest after this, not
                # five minutes: once (a make test of 2026-12-05) an engine pod stayed
                # Pending on "unbound immediate PersistentVolumeClaims" for two minutes
                # after its claim was bound, its requeue on the claim's change missed.
                "--pod-max-in-unschedulable-pods-duration=10s",
                "--v=1",
            ],
        )
        kwok_config = w / "kwok.yaml"
        # Without Stage objects in its config, kwok plays its default node and pod stages
        # ("fast": nodes go Ready and keep their lease; pods go Running/Ready with an IP,
        # and pods being deleted are removed).
        kwok_config.write_text(
            "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n"
        )
        self._spawn(
            "kwok",
            [
                f"--config={kwok_config}",
                f"--kubeconfig={self.kubeconfig}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                f"--cidr={POD_CIDR}",
                "--node-ip=10.255.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
                # Keep a Lease per node in kube-node-lease, renewed like a kubelet's
                # (without it kwok heartbeats through node status instead).
                "--node-lease-duration-seconds=40",
                "--v=INFO",
            ],
        )

        # The service account controller (controller manager) makes "default" in each
        # namespace; pods cannot be created before it exists.
        kubectl = self.kubectl()
        wait_until(
            "the default service account (kube-controller-manager)",
            lambda: kubectl.run("get", "serviceaccount", "default", "-n", "default", "-o", "name"),
            timeout=self.start_timeout,
            checks=[p.check for p in self._procs],
        )

    def _spawn(self, name: str, args: list[str]) -> _Proc:
        proc = spawn(name, [str(self.bin / name), *args], self.log(name), self.workdir)
        self._procs.append(proc)
        return proc

    def check(self) -> None:
        """Raise (with the log's tail) if a component has died."""
        for proc in self._procs:
            proc.check()

    def stop(self) -> None:
        atexit.unregister(self.stop)
        # Reverse order: kwok, scheduler, controller manager, apiserver, etcd.
        while self._procs:
            proc = self._procs.pop()
            # The apiserver's graceful shutdown waits for every open watch to end, and a
            # client's `kubectl get -w` (or an operator's watch) held it for the whole
            # 10 s: nothing a plane being thrown away serves needs draining.
            proc.stop(grace=1.0 if proc.name == "kube-apiserver" else 10.0)
        if self._own_workdir and self.workdir is not None and not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- fake nodes

    def add_nodes(
        self,
        count: int,
        engine: bool = False,
        cpu: str | None = None,
        memory: str | None = None,
        pods: str = "110",
        wait: bool = True,
    ) -> list[str]:
        """Create kwok-managed Nodes; with engine=True, dedicated engine nodes.

        Engine nodes carry the label tradingvenue.io/engine-node=true, the taint
        tradingvenue.io/engine=true:NoSchedule and hugepages-2Mi / hugepages-1Gi.
        """
        kind = "engine" if engine else "node"
        names = []
        objects = []
        for _ in range(count):
            self._nodes[kind] = self._nodes.get(kind, 0) + 1
            name = f"kwok-{kind}-{self._nodes[kind]}"
            names.append(name)
            objects.append(fake_node(name, engine=engine, cpu=cpu, memory=memory, pods=pods))
        kubectl = self.kubectl()
        kubectl.create(*objects)
        if wait:
            wait_until(
                f"nodes {', '.join(names)} Ready (kwok)",
                lambda: all(_node_ready(kubectl.json("get", "node", n)) for n in names),
                timeout=60,
                checks=[self.check],
            )
        return names


def fake_node(
    name: str,
    engine: bool = False,
    cpu: str | None = None,
    memory: str | None = None,
    pods: str = "110",
) -> dict:
    capacity = {
        "cpu": cpu or ("16" if engine else "8"),
        "memory": memory or ("64Gi" if engine else "32Gi"),
        "pods": pods,
        "ephemeral-storage": "100Gi",
    }
    labels = {
        "type": "kwok",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/role": "agent",
        "node-role.kubernetes.io/agent": "",
    }
    taints = []
    if engine:
        capacity["hugepages-2Mi"] = "2Gi"
        capacity["hugepages-1Gi"] = "4Gi"
        labels[ENGINE_NODE_LABEL] = "true"
        taints.append({"key": ENGINE_TAINT_KEY, "value": "true", "effect": "NoSchedule"})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": labels,
        },
        "spec": {"taints": taints} if taints else {},
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def _node_ready(node: dict) -> bool:
    for cond in node.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def _http_get(url: str, tls: ssl.SSLContext | None = None, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, context=tls, timeout=timeout) as resp:
        return resp.read().decode()
