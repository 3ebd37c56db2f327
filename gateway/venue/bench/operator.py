"""`venue bench operator`: N venues on M kwok nodes, applied at once to one operator.

Prints (JSON) how long until every venue's Ready condition is True, each venue's own
time to Ready (p50, max), the operator's CPU seconds (utime + stime of its process, from
/proc/<pid>/stat) while it builds them and over a further idle window (its timers' cost),
and its peak memory (VmHWM of /proc/<pid>/status).

The cluster:
  - $KUBECONFIG set: that cluster, whose nodes must exist (--nodes is not used; the
    report gives how many it has). The TradingVenue CRD is applied (server-side); it is
    left installed at the end, the bench's namespaces and venues are deleted.
  - otherwise: a local control plane (etcd, kube-apiserver, controller manager,
    scheduler, kwok) from venue.local.cluster, with M kwok nodes of
    which --engine-fraction are engine nodes (label tradingvenue.io/engine-node=true,
    taint tradingvenue.io/engine=true:NoSchedule, hugepages), stopped at the end. This
    is a developer tool run from a clone: the harness and the CRD are read from the
    checkout this module lives in. The binaries are built by
    venue/local/controlplane/build.sh (cached; the first build takes 10-20 minutes).

One operator process (`python -m venue_operator`, watching all namespaces, with its
default settings unless --tick is given) serves every venue. Each venue lives in a
namespace of its own and is the small sample venue (crds/samples/venue.yaml) with two
changes: its volumes go with it (volumeRetention Delete), and its Redis is external, a local redis-server the bench starts (or --redis-url),
named by a Secret, so QueueReady is real (the operator reads consumer-group lag from
it); Redis managed in-cluster would be unreachable from the operator on kwok, where no
pod runs. Postgres stays managed (a StatefulSet with a volume); on the local control
plane the bench binds each pending claim to a hostPath volume, as a provisioner would
(--bind-volumes, on by default there, off with $KUBECONFIG). As kwok runs no pod, what
the venues' writers and submitters would say of their health is said for them
(venue.bench.kwok_parts; --kwok-parts, on by default there, off with $KUBECONFIG).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from venue.bench.kwok_parts import KwokParts

ROOT = Path(__file__).resolve().parents[3]  # the checkout: gateway/venue/bench/operator.py
CRD = ROOT / "crds" / "tradingvenue.io_tradingvenues.yaml"
SAMPLE = ROOT / "crds" / "samples" / "venue.yaml"

GROUP, VERSION, PLURAL = "tradingvenue.io", "v1alpha1", "tradingvenues"
CRD_NAME = f"{PLURAL}.{GROUP}"
RUN_LABEL = "tradingvenue.io/bench-run"
ENGINE_NODE_LABEL = "tradingvenue.io/engine-node"
QUEUE_SECRET = "queue"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    pass


# --- progress ----------------------------------------------------------------------------

_QUIET = False
_START = time.monotonic()


def say(message: str) -> None:
    if not _QUIET:
        print(f"[{time.monotonic() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- the operator process ----------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat


def memory_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


# --- the cluster -------------------------------------------------------------------------


def load_cluster_module():
    """The local control plane (venue.local.cluster), imported when the bench starts one."""
    from venue.local import cluster

    return cluster


class Api:
    """The bench's own client of the API server (the operator has its own)."""

    def __init__(self, kubeconfig: str | None) -> None:
        from kubernetes import client, config
        from kubernetes.dynamic import DynamicClient

        config.load_kube_config(config_file=kubeconfig)
        self.client = client.ApiClient()
        self.core = client.CoreV1Api(self.client)
        self.custom = client.CustomObjectsApi(self.client)
        self.extensions = client.ApiextensionsV1Api(self.client)
        self.dynamic = DynamicClient(self.client)
        self.version = client.VersionApi(self.client).get_code().git_version

    def install_crd(self, timeout: float = 60) -> None:
        import yaml

        crd = yaml.safe_load(CRD.read_text())
        resource = self.dynamic.resources.get(api_version="apiextensions.k8s.io/v1",
                                              kind="CustomResourceDefinition")
        resource.server_side_apply(body=crd, field_manager="venue-bench", force_conflicts=True)
        deadline = time.monotonic() + timeout
        while True:
            status = self.extensions.read_custom_resource_definition(CRD_NAME).status
            established = any(c.type == "Established" and c.status == "True"
                              for c in (status.conditions or []))
            if established:
                try:
                    self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1)
                    return
                except Exception:  # noqa: BLE001 - not served yet
                    pass
            if time.monotonic() > deadline:
                raise BenchError(f"CRD {CRD_NAME} not established after {timeout:.0f}s")
            time.sleep(0.2)

    def nodes(self) -> tuple[int, int]:
        """(schedulable nodes, of which engine nodes)."""
        nodes = [n for n in self.core.list_node().items if not n.spec.unschedulable]
        engine = [n for n in nodes if (n.metadata.labels or {}).get(ENGINE_NODE_LABEL) == "true"]
        return len(nodes), len(engine)

    def venues(self, run: str) -> list[dict]:
        return self.custom.list_cluster_custom_object(
            GROUP, VERSION, PLURAL, label_selector=f"{RUN_LABEL}={run}")["items"]


class VolumeBinder:
    """Binds each pending claim in the bench's namespaces to a hostPath volume made for
    it, as a cluster's provisioner would (the local control plane has none)."""

    def __init__(self, api: Api, namespaces: set[str]) -> None:
        self.api = api
        self.namespaces = namespaces
        self.made: dict[str, str] = {}  # claim uid -> volume name

    def bind_pending(self) -> None:
        for claim in self.api.core.list_persistent_volume_claim_for_all_namespaces().items:
            meta, spec = claim.metadata, claim.spec
            if (meta.namespace not in self.namespaces or claim.status.phase != "Pending"
                    or spec.volume_name or meta.uid in self.made):
                continue
            name = f"pv-{meta.uid}"
            self.api.core.create_persistent_volume({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {RUN_LABEL: "bench"}},
                "spec": {
                    "capacity": {"storage": spec.resources.requests["storage"]},
                    "accessModes": spec.access_modes,
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": spec.storage_class_name or "",
                    "hostPath": {"path": f"/tmp/{name}"},
                    "claimRef": {"namespace": meta.namespace, "name": meta.name,
                                 "uid": meta.uid},
                }})
            self.made[meta.uid] = name

    def delete_all(self) -> None:
        for name in self.made.values():
            try:
                self.api.core.delete_persistent_volume(name)
            except Exception:  # noqa: BLE001 - best effort
                pass


# --- the venues ----------------------------------------------------------------------------


def venue_body(name: str, run: str) -> dict:
    """The sample venue, its Redis external (the Secret `queue`), volumes deleted with it."""
    import yaml

    venue = yaml.safe_load(SAMPLE.read_text())
    venue["metadata"] = {"name": name, "labels": {RUN_LABEL: run}}
    spec = venue["spec"]
    spec["redis"] = {"mode": "External", "external": {"urlSecret": {"name": QUEUE_SECRET}}}
    spec["volumeRetention"] = "Delete"
    return venue


def ready_condition(venue: dict) -> dict:
    for condition in (venue.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition
    return {}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --- the run -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    external = os.environ.get("KUBECONFIG") or None
    workdir = Path(tempfile.mkdtemp(prefix="tv-bench-operator-"))
    run_id = uuid.uuid4().hex[:6]
    control_plane = None
    operator = None
    redis_server = None
    kwok_parts = None
    api = None
    binder = None
    namespaces: list[str] = []
    failed = True
    result: dict[str, Any] = {}
    load_at_start = round(os.getloadavg()[0], 2)  # the machine may be shared: for context
    try:
        # The cluster.
        if external:
            kubeconfig = external
            say(f"using the cluster of $KUBECONFIG ({external})")
        else:
            cluster = load_cluster_module()
            say("starting a local control plane (venue.local.cluster)")
            started = time.monotonic()
            control_plane = cluster.ControlPlane().start()
            engine_nodes = min(args.nodes, max(1, round(args.nodes * args.engine_fraction)))
            say(f"adding {args.nodes - engine_nodes} ordinary and {engine_nodes} engine "
                "kwok nodes")
            if args.nodes - engine_nodes:
                control_plane.add_nodes(args.nodes - engine_nodes)
            control_plane.add_nodes(engine_nodes, engine=True)
            kubeconfig = str(control_plane.kubeconfig)
            result["control_plane_start_seconds"] = round(time.monotonic() - started, 1)
        api = Api(kubeconfig)
        nodes, engine_nodes = api.nodes()
        if not nodes:
            raise BenchError("the cluster has no schedulable nodes")
        if not engine_nodes:
            raise BenchError(f"the cluster has no engine nodes ({ENGINE_NODE_LABEL}=true): "
                             "engine pods would never be scheduled")
        say(f"kubernetes {api.version}, {nodes} nodes ({engine_nodes} engine nodes)")
        api.install_crd()

        # The venues' Redis.
        redis_url = args.redis_url
        if redis_url is None:
            from venue.local.servers import RedisServer

            redis_server = RedisServer(workdir / "redis").start()
            redis_url = redis_server.url
        say(f"venues' Redis: {redis_url}")

        # Namespaces with the Redis Secret, before the clock starts.
        names = [f"venue-{i:03d}" for i in range(args.venues)]
        namespaces = [f"tvbench-{run_id}-{i:03d}" for i in range(args.venues)]
        for namespace in namespaces:
            api.core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": namespace,
                                                    "labels": {RUN_LABEL: run_id}}})
            api.core.create_namespaced_secret(namespace, {
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": QUEUE_SECRET},
                "stringData": {"url": redis_url}})
        bind = args.bind_volumes if args.bind_volumes is not None else not external
        binder = VolumeBinder(api, set(namespaces)) if bind else None

        # The operator.
        log = Path(args.operator_log) if args.operator_log else workdir / "operator.log"
        tick = {"TV_OPERATOR_TICK_INTERVAL_S": str(args.tick)} if args.tick is not None else {}
        operator = load_cluster_module().OperatorProcess(log, kubeconfig, env=tick)
        started = time.monotonic()
        while not operator.alive():
            operator.check()
            if time.monotonic() - started > 120:
                raise BenchError(f"the operator's liveness endpoint never answered:\n"
                                 f"{operator.tail()}")
            time.sleep(0.2)
        startup_s = time.monotonic() - started
        cpu_started = cpu_seconds(operator.pid)
        say(f"operator pid {operator.pid} live after {startup_s:.1f}s "
            f"({cpu_started:.2f} CPU s)")

        if args.kwok_parts if args.kwok_parts is not None else not external:
            kwok_parts = KwokParts(redis_url, {
                name: venue_body(name, run_id)["spec"]["engine"]["partitions"]
                for name in names}).start()

        # Apply every venue; poll until each is Ready.
        created: dict[tuple[str, str], float] = {}
        t0 = time.monotonic()
        for namespace, name in zip(namespaces, names):
            api.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                       venue_body(name, run_id))
            created[(namespace, name)] = time.monotonic()
        say(f"{args.venues} venues applied in {time.monotonic() - t0:.1f}s")
        ready_at: dict[tuple[str, str], float] = {}
        last_report = 0.0
        last: list[dict] = []
        while len(ready_at) < args.venues:
            operator.check()
            if binder is not None:
                binder.bind_pending()
            last = api.venues(run_id)
            now = time.monotonic()
            for venue in last:
                key = (venue["metadata"]["namespace"], venue["metadata"]["name"])
                if key not in ready_at and ready_condition(venue).get("status") == "True":
                    ready_at[key] = now
            if now - t0 > args.timeout:
                waiting = [f"{v['metadata']['namespace']}/{v['metadata']['name']}: "
                           f"{ready_condition(v).get('message', 'no Ready condition')}"
                           for v in last if (v["metadata"]["namespace"],
                                             v["metadata"]["name"]) not in ready_at]
                raise BenchError(f"{args.venues - len(ready_at)} venues not Ready after "
                                 f"{args.timeout:.0f}s:\n  " + "\n  ".join(waiting[:10])
                                 + f"\noperator log ({operator.log}):\n{operator.tail()}")
            if now - last_report >= args.progress:
                say(f"{len(ready_at)}/{args.venues} Ready" + _waiting_on(last))
                last_report = now
            time.sleep(args.poll)
        all_ready_s = max(ready_at.values()) - t0
        cpu_ready = cpu_seconds(operator.pid)
        rss_ready = memory_kib(operator.pid, "VmHWM")
        say(f"all {args.venues} Ready after {all_ready_s:.1f}s; "
            f"operator {cpu_ready - cpu_started:.2f} CPU s; idle window of {args.idle:.0f}s")

        # The idle window: nothing changes, the operator's timers keep ticking.
        idle_end = time.monotonic() + args.idle
        while time.monotonic() < idle_end:
            operator.check()
            time.sleep(min(1.0, max(0.0, idle_end - time.monotonic())))
        cpu_idle = cpu_seconds(operator.pid) - cpu_ready
        peak_kib = memory_kib(operator.pid, "VmHWM")
        per_venue = [ready_at[key] - created[key] for key in created]
        result = {
            "venues": args.venues,
            "nodes": nodes,
            "engine_nodes": engine_nodes,
            "seconds_to_all_ready": round(all_ready_s, 2),
            "venue_seconds_to_ready_p50": round(statistics.median(per_venue), 2),
            "venue_seconds_to_ready_p90": round(percentile(per_venue, 0.9), 2),
            "venue_seconds_to_ready_max": round(max(per_venue), 2),
            "operator_cpu_seconds": round(cpu_ready - cpu_started, 2),
            "operator_cpu_seconds_startup": round(cpu_started, 2),
            "operator_peak_rss_mib": round(peak_kib / 1024, 1),
            "operator_peak_rss_mib_at_ready": round(rss_ready / 1024, 1),
            "operator_cpu_seconds_idle": round(cpu_idle, 2),
            "idle_seconds": args.idle,
            "operator_tick_interval_s": args.tick if args.tick is not None else _default_tick(),
            "watch": "all namespaces (one operator process)",
            "redis": "external: " + ("local redis-server started by the bench"
                                     if redis_server else "--redis-url"),
            "postgres": "managed (StatefulSet)" + (", volumes bound by the bench"
                                                   if binder else ""),
            "cluster": "$KUBECONFIG" if external else "local control plane, kwok nodes",
            "kubernetes_version": api.version,
            "host_cpus": os.cpu_count(),
            "host_loadavg_1m_at_start": load_at_start,
            **result,
        }
        failed = False
        return result
    finally:
        say("cleaning up")
        if external and api is not None:
            _delete_venues(api, run_id, namespaces, operator)
        if operator is not None:
            operator.stop()
            if failed:
                print(f"operator log ({operator.log}), last lines:\n{operator.tail()}",
                      file=sys.stderr)
        if external and api is not None:
            for namespace in namespaces:
                try:
                    api.core.delete_namespace(namespace)
                except Exception:  # noqa: BLE001 - best effort
                    pass
            if binder is not None:
                binder.delete_all()
        if control_plane is not None:
            control_plane.stop()
        if kwok_parts is not None:
            kwok_parts.stop()
        if redis_server is not None:
            redis_server.stop()
        if failed and not args.operator_log and operator is not None:
            print(f"kept {workdir} (the operator's log)", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _waiting_on(venues: list[dict]) -> str:
    """What the venues not yet Ready wait for, counted: '; 12 not ready: EngineReady'."""
    counts: dict[str, int] = {}
    for venue in venues:
        ready = ready_condition(venue)
        if ready.get("status") != "True":
            message = ready.get("message") or "no status yet"
            counts[message] = counts.get(message, 0) + 1
    return "".join(f"; {n} {message}" for message, n in sorted(counts.items()))


def _default_tick() -> float:
    from venue_operator.settings import OperatorSettings

    return OperatorSettings().tick_interval_s  # what the operator reads from our environment


def _delete_venues(api: Api, run_id: str, namespaces: list[str], operator) -> None:
    """Delete the venues while the operator runs (it takes its finalizer off them)."""
    for namespace in namespaces:
        try:
            api.custom.delete_collection_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, label_selector=f"{RUN_LABEL}={run_id}")
        except Exception:  # noqa: BLE001 - best effort
            pass
    deadline = time.monotonic() + 60
    while operator is not None and operator.process.poll() is None \
            and time.monotonic() < deadline:
        try:
            if not api.venues(run_id):
                return
        except Exception:  # noqa: BLE001
            return
        time.sleep(1)


def main(argv: list[str]) -> int:
    global _QUIET
    parser = argparse.ArgumentParser(prog="venue bench operator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venues", type=int, default=20, help="venues applied at once (N)")
    parser.add_argument("--nodes", type=int, default=50,
                        help="kwok nodes of the local control plane (M); not used with "
                             "$KUBECONFIG")
    parser.add_argument("--engine-fraction", type=float, default=0.2,
                        help="share of the M nodes that are engine nodes (at least one)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds to wait for every venue to be Ready")
    parser.add_argument("--idle", type=float, default=30,
                        help="seconds of the idle window after all are Ready")
    parser.add_argument("--poll", type=float, default=0.5,
                        help="seconds between the bench's looks at the venues")
    parser.add_argument("--progress", type=float, default=5,
                        help="seconds between progress lines on stderr (without --json)")
    parser.add_argument("--tick", type=float, default=None,
                        help="the operator's tick (TV_OPERATOR_TICK_INTERVAL_S: status and "
                             "autoscaler timer); default: the operator's own, 15 s")
    parser.add_argument("--redis-url", help="the venues' external Redis (default: a local "
                                            "redis-server the bench starts)")
    parser.add_argument("--bind-volumes", action=argparse.BooleanOptionalAction, default=None,
                        help="bind pending claims to hostPath volumes (default: on for the "
                             "local control plane, off with $KUBECONFIG)")
    parser.add_argument("--kwok-parts", action=argparse.BooleanOptionalAction, default=None,
                        help="say the venues' parts' health for them, as kwok runs no pod "
                             "(default: on for the local control plane, off with $KUBECONFIG)")
    parser.add_argument("--operator-log", help="keep the operator's log in this file")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    if args.venues < 1 or args.nodes < 1:
        parser.error("--venues and --nodes must be at least 1")
    _QUIET = args.json
    try:
        result = run(args)
    except (BenchError, RuntimeError, TimeoutError) as error:  # the harness's errors too
        print(f"venue bench operator: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0
