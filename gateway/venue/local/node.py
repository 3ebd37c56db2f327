"""One real Kubernetes node on this machine: containerd, CNI, kubelet, kube-proxy,
kube-router (NetworkPolicies) and CoreDNS, for the tests that run the venue itself on
Kubernetes (tests/k8s/test_node.py).

The node lives in a network namespace of its own, joined to the host by a veth pair:

    host (root namespace)                        node namespace tv-node-<pid>
    kube-apiserver on HOST_IP  <-- veth -->  NODE_IP: kubelet, containerd, kube-proxy,
                                                      CoreDNS; bridge tv0 (POD_CIDR) with
                                                      every pod's own namespace behind it

so the bridge, kube-proxy's and kube-router's iptables rules, kube-router's ipsets and
conntrack entries all go with the namespace. The CNI bridge plugin enforces no
NetworkPolicy; kube-router, with its firewall only (no routing, no service proxy), does,
as on a cluster whose CNI leaves policy to it. The host routes SERVICE_CIDR and POD_CIDR
to the node, so a test reaches a ClusterIP Service as a pod would. Everything else the
node needs is in a temp dir: containerd's root and socket, the kubelet's root, the CNI
config, the volumes of the claims (a hostPath per claim, made on demand by
HostPathVolumes), and the logs.

The host is changed only where a node must change it, and put back by stop():
- 2 MiB hugepages reserved in /proc/sys/vm/nr_hugepages (the count before is restored);
- the kubelet sets vm.overcommit_memory, vm.panic_on_oom, kernel.panic and
  kernel.panic_on_oops (protectKernelDefaults: false, as on a kubeadm node); the values
  before are restored;
- its cgroups under /sys/fs/cgroup/<controller>/kubepods are removed.

This VM's own facts, and what the node does about them:
- PID 1 is not systemd: the cgroup driver is cgroupfs (kubelet and runc).
- cgroups v1 (hybrid): the kubelet (1.34) runs on v1 with a deprecation warning. The
  hugetlb controller is mounted only in the v2 hierarchy, which v1 kubelets do not use:
  hugepages are accounted by the scheduler and the kubelet's admission (node capacity,
  the pod's request) and mounted as hugetlbfs emptyDirs, but no cgroup limits them.
- root lacks CAP_SYS_RESOURCE: containerd's restrict_oom_score_adj keeps containers'
  oom_score_adj at or above its own; the kubelet's own -999 fails with a logged error.

    network = NodeNetwork().create([SERVICE_CIDR, POD_CIDR])
    cp = ControlPlane(address=network.host_ip).start()
    node = RealNode(cp, network).start()
    node.import_archive(archive)
    ...
    node.stop(); cp.stop(); network.delete()
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from venue.local import images
from venue.local.process import free_port
from venue.local.cluster import (
    SERVICE_CIDR,
    ControlPlane,
    ControlPlaneError,
    _kubeconfig,
    _node_ready,
    _Proc,
    _tail,
    make_leaf,
    spawn,
    wait_until,
)

HERE = Path(__file__).resolve().parent
NODE_IMAGES = HERE / "node_images"

NODE_NAME = "tv-node-1"
HOST_IP = "10.250.0.1"  # the host's end of the veth pair: the API server listens here
NODE_IP = "10.250.0.2"  # the node's end: kubelet, CoreDNS (the cluster's DNS server)
VETH_PREFIX = 30
POD_CIDR = "10.244.0.0/24"
BRIDGE = "tv0"
CLUSTER_DOMAIN = "cluster.local"
HUGEPAGE_KB = 2048

# The label the test venue's engine selects (spec.engine.nodeSelector). No taint: the
# venue's other parts run beside the engine.
NODE_LABEL = "tradingvenue.io/test-node"

# The images the node's pods run that no registry here serves: the sandbox's pause, and
# Redis and Postgres for managed venues. Built with podman from node_images/<name>.
PAUSE_IMAGE = "localhost/tradingvenue-node/pause:1.0"
REDIS_IMAGE = "localhost/tradingvenue-node/redis:7"
POSTGRES_IMAGE = "localhost/tradingvenue-node/postgres:15"
NODE_IMAGE_DIRS = {PAUSE_IMAGE: "pause", REDIS_IMAGE: "redis", POSTGRES_IMAGE: "postgres"}

# What the kubelet writes when protectKernelDefaults is false.
KUBELET_SYSCTLS = ("vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic",
                   "kernel/panic_on_oops")

CNI_BIN = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
# From Debian's packages (NODE_PACKAGES and IMAGE_PACKAGES in the Makefile).
HOST_TOOLS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables",
              "ipset", "conntrack", "nsenter", "ip", "podman")


def missing_tools() -> list[str]:
    """What this machine lacks to run a node (empty when it can)."""
    lacking = [tool for tool in HOST_TOOLS if shutil.which(tool) is None]
    lacking += [str(CNI_BIN / p) for p in CNI_PLUGINS if not (CNI_BIN / p).exists()]
    if os.geteuid() != 0:
        lacking.append("root")
    if not Path("/proc/sys/vm/nr_hugepages").exists():
        lacking.append("hugepages (/proc/sys/vm/nr_hugepages)")
    return lacking


def _run(argv: Sequence[str], check: bool = True, timeout: float = 120,
         input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise ControlPlaneError(f"{' '.join(argv)} failed ({proc.returncode}):\n"
                                f"{proc.stderr}{proc.stdout}")
    return proc


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name


def build_node_images() -> None:
    """The pause, Redis and Postgres images, with podman (cached in its store)."""
    tool = "podman"
    images.ensure_base(tool)
    for ref, directory in NODE_IMAGE_DIRS.items():
        if images.has_image(tool, ref):
            continue
        started = time.monotonic()
        _run([tool, "build", "-q", "-t", ref, str(NODE_IMAGES / directory)], timeout=900)
        print(f"built {ref} in {time.monotonic() - started:.0f} s", flush=True)


# --- the network namespace -------------------------------------------------------------


@dataclass
class NodeNetwork:
    """The node's network namespace and its veth pair to the host."""

    name: str = field(default_factory=lambda: f"tv-node-{os.getpid()}")
    host_ip: str = HOST_IP
    node_ip: str = NODE_IP
    routes: tuple[str, ...] = ()
    _made: bool = False

    @property
    def host_link(self) -> str:
        return f"tvh{os.getpid() % 100000}"

    @property
    def path(self) -> str:
        return f"/var/run/netns/{self.name}"

    def enter(self, argv: Sequence[str]) -> list[str]:
        """argv run inside the namespace (its network only: mounts and cgroups stay the
        host's, which the kubelet and containerd need)."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def create(self, routes: Sequence[str]) -> NodeNetwork:
        remove_stale_namespaces()
        _run(["ip", "netns", "add", self.name])
        self._made = True
        peer = "tvn0"
        _run(["ip", "link", "add", self.host_link, "type", "veth", "peer", "name", peer,
              "netns", self.name])
        _run(["ip", "addr", "add", f"{self.host_ip}/{VETH_PREFIX}", "dev", self.host_link])
        _run(["ip", "link", "set", self.host_link, "up"])
        inside = ["ip", "netns", "exec", self.name]
        _run([*inside, "ip", "link", "set", "lo", "up"])
        _run([*inside, "ip", "addr", "add", f"{self.node_ip}/{VETH_PREFIX}", "dev", peer])
        _run([*inside, "ip", "link", "set", peer, "up"])
        # Per-namespace settings: route between the bridge and the veth; let bridged
        # traffic through iptables (kube-proxy's rules see pod-to-Service packets).
        for name, value in (("net/ipv4/ip_forward", "1"),
                            ("net/bridge/bridge-nf-call-iptables", "1")):
            _run(self.enter(["sh", "-c", f"echo {value} > /proc/sys/{name}"]))
        for cidr in routes:
            _run(["ip", "route", "replace", cidr, "via", self.node_ip])
        self.routes = tuple(routes)
        return self

    def delete(self) -> None:
        for cidr in self.routes:
            _run(["ip", "route", "del", cidr, "via", self.node_ip], check=False)
        self.routes = ()
        if self._made:
            # The veth pair, the bridge and every iptables rule in it go with it.
            _run(["ip", "netns", "del", self.name], check=False)
            self._made = False


def remove_stale_namespaces() -> None:
    """Namespaces of nodes whose test process died without cleaning up."""
    listed = _run(["ip", "netns", "list"], check=False).stdout.split()
    for name in listed:
        if not name.startswith("tv-node-"):
            continue
        pid = name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _run(["ip", "netns", "del", name], check=False)


# --- volumes ---------------------------------------------------------------------------


class HostPathVolumes:
    """Gives every pending claim a hostPath PersistentVolume of its size under `root`,
    as a cluster's provisioner would (a test cluster has no storage of its own). The
    directory is world-writable: hostPath volumes get no fsGroup ownership."""

    def __init__(self, kubectl, root: Path, namespace: str | None = None) -> None:
        self.kubectl = kubectl
        self.root = root
        self.namespace = namespace
        self.made: set[str] = set()
        self.last_error: str | None = None  # why the last round failed, for a timeout's message
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hostpath-volumes",
                                        daemon=True)

    def start(self) -> HostPathVolumes:
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def bind_pending(self) -> None:
        scope = ["-n", self.namespace] if self.namespace else ["-A"]
        for claim in self.kubectl.json("get", "pvc", *scope)["items"]:
            if claim["status"].get("phase") != "Pending" or claim["spec"].get("volumeName"):
                continue
            name = f"pv-{claim['metadata']['uid']}"
            if name in self.made:
                continue
            path = self.root / name
            path.mkdir(exist_ok=True)
            path.chmod(0o777)
            self._create_volume({
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                "spec": {
                    "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
                    "accessModes": claim["spec"]["accessModes"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": claim["spec"].get("storageClassName") or "",
                    "hostPath": {"path": str(path), "type": "Directory"},
                    "claimRef": {"namespace": claim["metadata"]["namespace"],
                                 "name": claim["metadata"]["name"],
                                 "uid": claim["metadata"]["uid"]},
                }})
            self.made.add(name)

    def _create_volume(self, volume: dict) -> None:
        try:
            self.kubectl.create(volume)
        except ControlPlaneError as error:
            # A create that timed out on our side may have been made on the server's.
            if "AlreadyExists" not in str(error):
                raise

    def _loop(self) -> None:
        # A round that fails is tried again the next; nothing may end the thread, or every
        # claim after it would wait unbound with no word of why.
        while not self._stop.wait(0.5):
            try:
                self.bind_pending()
                self.last_error = None
            except Exception as error:  # noqa: BLE001 - kept for the waiting test to show
                self.last_error = f"{type(error).__name__}: {error}"


# --- the node --------------------------------------------------------------------------


@dataclass
class RealNode:
    """containerd + kubelet + kube-proxy + CoreDNS in the network namespace `network`,
    registered with `cp` (a ControlPlane listening on network.host_ip) as NODE_NAME."""

    cp: ControlPlane
    network: NodeNetwork
    hugepages: int = 512  # 2 MiB pages reserved while the node runs: 1 GiB
    start_timeout: float = 180.0

    workdir: Path = field(init=False)
    volumes: HostPathVolumes = field(init=False)
    _procs: list[_Proc] = field(default_factory=list, init=False)
    _restore: dict[str, str] = field(default_factory=dict, init=False)
    _netns_before: set[str] = field(default_factory=set, init=False)

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd" / "containerd.sock"

    def log(self, name: str) -> Path:
        return self.cp.log(name)

    def ctr(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return _run(["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args],
                    timeout=timeout)

    # -- lifecycle

    def start(self) -> RealNode:
        lacking = missing_tools()
        if lacking:
            raise ControlPlaneError(f"cannot run a node here; missing: {', '.join(lacking)}")
        self.workdir = self.cp.workdir / "node"
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.makedirs("/var/run/netns", exist_ok=True)
        self._netns_before = set(os.listdir("/var/run/netns"))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._reserve_hugepages()
        for name in KUBELET_SYSCTLS:
            self._restore[name] = _sysctl_path(name).read_text().strip()
        self._certificates()
        self._start_containerd()
        build_node_images()
        self.import_podman_image(PAUSE_IMAGE)
        self._start_kubelet()
        self._start_kube_proxy()
        self._start_coredns()
        kubectl = self.cp.kubectl()
        wait_until(f"node {NODE_NAME} Ready",
                   lambda: _node_ready(kubectl.json("get", "node", NODE_NAME)),
                   timeout=self.start_timeout, interval=1, checks=[self.check])
        # kube-router finds its node by name: once it is registered. Its chains in place
        # before the node's first pod.
        self._start_kube_router()
        wait_until("kube-router's firewall", lambda: _run(self.network.enter(
            ["iptables", "-S", "KUBE-ROUTER-FORWARD"]), check=False).returncode == 0,
            timeout=60, interval=0.5, checks=[self.check])
        self.volumes = HostPathVolumes(kubectl, self.workdir / "volumes").start()

    def check(self) -> None:
        for proc in self._procs:
            proc.check()

    def stop(self) -> None:
        volumes = getattr(self, "volumes", None)
        if volumes is not None:
            volumes.stop()
        # The kubelet first, so it restarts nothing; then every container and shim.
        for proc in reversed(self._procs):
            if proc.name == "kubelet":
                proc.stop()
        if self.socket.exists():
            self._kill_containers()
        while self._procs:
            self._procs.pop().stop()
        self._kill_shims()
        self._unmount()
        self._remove_cgroups()
        self._remove_pod_namespaces()
        self.network.delete()
        for name, value in self._restore.items():
            with contextlib.suppress(OSError):
                _sysctl_path(name).write_text(value)
        self._restore.clear()

    # -- pieces

    def _reserve_hugepages(self) -> None:
        path = _sysctl_path("vm/nr_hugepages")
        self._restore["vm/nr_hugepages"] = path.read_text().strip()
        path.write_text(str(self.hugepages))
        got = int(path.read_text())
        if got < self.hugepages:
            raise ControlPlaneError(f"asked for {self.hugepages} hugepages of 2 MiB and got "
                                    f"{got}: not enough contiguous free memory")

    def _certificates(self) -> None:
        pki = self.cp.workdir / "pki"
        kubeconfigs = {
            "kubelet": (f"/O=system:nodes/CN=system:node:{NODE_NAME}", "system:node"),
            "kube-proxy": ("/CN=system:kube-proxy", "kube-proxy"),
            "coredns": ("/CN=system:coredns", "coredns"),
            "kube-router": ("/CN=system:kube-router", "kube-router"),
        }
        for name, (subject, user) in kubeconfigs.items():
            make_leaf(pki, f"node-{name}", subject)
            path = self.workdir / f"{name}.kubeconfig"
            path.write_text(_kubeconfig(self.cp.server, pki / "ca.crt",
                                        pki / f"node-{name}.crt", pki / f"node-{name}.key",
                                        user))
            path.chmod(0o600)
        # CoreDNS reads Services, EndpointSlices, Pods and Namespaces (kubeadm's role).
        self.cp.kubectl().apply(
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "system:coredns"},
             "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods",
                                                         "namespaces"],
                        "verbs": ["list", "watch"]},
                       {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                        "verbs": ["list", "watch"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "system:coredns"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "system:coredns"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                           "name": "system:coredns"}]},
            # kube-router's firewall watches pods, namespaces and policies, and reads its
            # node (its addresses); what its own daemonset's role grants for that.
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "system:kube-router"},
             "rules": [{"apiGroups": [""], "resources": ["namespaces", "pods", "services",
                                                         "nodes", "endpoints"],
                        "verbs": ["get", "list", "watch"]},
                       {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                        "verbs": ["get", "list", "watch"]},
                       {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"],
                        "verbs": ["get", "list", "watch"]}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
             "metadata": {"name": "system:kube-router"},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": "system:kube-router"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                           "name": "system:kube-router"}]})

    def _spawn(self, name: str, argv: list[str]) -> _Proc:
        proc = spawn(name, self.network.enter(argv), self.log(name), self.workdir)
        self._procs.append(proc)
        return proc

    def _start_containerd(self) -> None:
        w = self.workdir / "containerd"
        cni = self.workdir / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        (cni / "net.d" / "10-tv.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0",
            "name": "tv",
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": True,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_CIDR}]],
                          "routes": [{"dst": "0.0.0.0/0"}],
                          "dataDir": str(cni / "ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ]}, indent=2))
        config = w / "config.toml"
        w.mkdir(parents=True, exist_ok=True)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config.write_text(f"""\
version = 2
root = "{w / 'root'}"
state = "{w / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{self.socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{w / 'opt'}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # Root here lacks CAP_SYS_RESOURCE: no container may be given an oom_score_adj below
  # containerd's own.
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "{shutil.which('runc')}"

[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{cni / 'net.d'}"
""")
        proc = self._spawn("containerd", ["containerd", "--config", str(config)])
        wait_until("containerd", lambda: self.socket.exists() and _run(
            ["ctr", "--address", str(self.socket), "version"], check=False).returncode == 0,
            timeout=60, checks=[proc.check])

    def import_podman_image(self, ref: str) -> None:
        """An image from podman's store into the node's containerd."""
        archive = self.workdir / "import.tar"
        _run(["podman", "save", "--format", "docker-archive", "-o", str(archive), ref],
             timeout=600)
        try:
            self.import_archive(archive)
        finally:
            archive.unlink(missing_ok=True)

    def import_archive(self, archive: Path) -> None:
        """An image archive (OCI or docker) into the node's containerd, as
        `ctr -n k8s.io images import` does on any node."""
        self.ctr("images", "import", "--no-unpack", str(archive))

    def _start_kubelet(self) -> None:
        pki = self.cp.workdir / "pki"
        root = self.workdir / "kubelet"
        root.mkdir(exist_ok=True)
        config = self.workdir / "kubelet.yaml"
        config.write_text(json.dumps({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "failSwapOn": False,
            "authentication": {"anonymous": {"enabled": False},
                               "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(pki / "ca.crt")}},
            "authorization": {"mode": "Webhook"},
            "address": NODE_IP,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "clusterDNS": [NODE_IP],
            "clusterDomain": CLUSTER_DOMAIN,
            # Exclusive CPUs for Guaranteed pods with whole CPUs; CPU 0 stays for the
            # system and every other pod.
            "cpuManagerPolicy": "static",
            "reservedSystemCPUs": "0",
            # The kubelet sets its usual kernel defaults; stop() puts the old ones back.
            "protectKernelDefaults": False,
            # A test node on a shared disk: never evict or collect images for disk use.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "registerNode": True,
            "podLogsDir": str(self.workdir / "pod-logs"),
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "nodeStatusUpdateFrequency": "4s",
            "syncFrequency": "10s",
        }, indent=2))
        self._spawn("kubelet", [
            str(self.cp.bin / "kubelet"),
            f"--config={config}",
            f"--kubeconfig={self.workdir / 'kubelet.kubeconfig'}",
            f"--root-dir={root}",
            f"--cert-dir={root / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            f"--node-labels={NODE_LABEL}=true",
            "--v=1",
        ])

    def _start_kube_proxy(self) -> None:
        config = self.workdir / "kube-proxy.yaml"
        config.write_text(json.dumps({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clientConnection": {"kubeconfig": str(self.workdir / "kube-proxy.kubeconfig")},
            "hostnameOverride": NODE_NAME,
            "bindAddress": NODE_IP,
            "clusterCIDR": POD_CIDR,
            "healthzBindAddress": f"127.0.0.1:{free_port()}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # conntrack limits are the host's, not the namespace's: leave them alone.
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                          "tcpCloseWaitTimeout": "0s"},
        }, indent=2))
        self._spawn("kube-proxy", [str(self.cp.bin / "kube-proxy"), f"--config={config}",
                                   "--v=1"])

    def _start_kube_router(self) -> None:
        """NetworkPolicies, enforced in the node's namespace with iptables and ipsets."""
        self._spawn("kube-router", [
            str(self.cp.bin / "kube-router"),
            f"--kubeconfig={self.workdir / 'kube-router.kubeconfig'}",
            f"--hostname-override={NODE_NAME}",
            "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
            "--enable-cni=false", "--enable-ipv4=true", "--enable-ipv6=false",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--health-port={free_port()}", "--metrics-port=0",
            "--v=1",
        ])

    def _start_coredns(self) -> None:
        corefile = self.workdir / "Corefile"
        corefile.write_text(f"""\
.:53 {{
    bind {NODE_IP}
    errors
    ready 127.0.0.1:{free_port()}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {self.workdir / 'coredns.kubeconfig'}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
""")
        self._spawn("coredns", [str(self.cp.bin / "coredns"), "-conf", str(corefile)])

    # -- teardown

    def _kill_containers(self) -> None:
        listed = _run(["ctr", "--address", str(self.socket), "-n", "k8s.io", "tasks", "ls",
                       "-q"], check=False, timeout=30).stdout.split()
        for task in listed:
            _run(["ctr", "--address", str(self.socket), "-n", "k8s.io", "tasks", "kill",
                  "-s", "SIGKILL", "--all", task], check=False, timeout=30)
        time.sleep(0.5)
        for task in listed:
            _run(["ctr", "--address", str(self.socket), "-n", "k8s.io", "tasks", "delete",
                  "-f", task], check=False, timeout=30)

    def _kill_shims(self) -> None:
        marker = str(self.socket).encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and marker in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)

    def _unmount(self) -> None:
        root = str(self.workdir)
        mounts = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                mounts.append(point)
        for point in sorted(mounts, key=len, reverse=True):
            _run(["umount", "-l", point], check=False)

    def _remove_cgroups(self) -> None:
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            top = hierarchy / "kubepods"
            if not top.is_dir():
                continue
            for directory in sorted((p for p in top.rglob("*") if p.is_dir()),
                                    key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    directory.rmdir()
            with contextlib.suppress(OSError):
                top.rmdir()

    def _remove_pod_namespaces(self) -> None:
        with contextlib.suppress(OSError):
            for name in set(os.listdir("/var/run/netns")) - self._netns_before:
                if name.startswith("cni-"):
                    path = f"/var/run/netns/{name}"
                    _run(["umount", path], check=False)
                    with contextlib.suppress(OSError):
                        os.unlink(path)

    # -- what tests read

    def tail(self, name: str, lines: int = 60) -> str:
        return _tail(self.log(name), lines)
