"""A Jaeger (v2) on this machine, with in-memory storage: the tracing backend of the
trace tests and of `venue up --tracing`.

build.sh beside this file builds it from Go modules (go.mod pins v1.75.0) and caches it
by version outside the repository. It listens on 127.0.0.1 only: OTLP/gRPC and OTLP/HTTP
for spans, and its query API and UI (`/api/v3/traces/{id}`, `/search`) on one HTTP port.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

from venue.local.process import Child, Service, free_port, port_open, wait_until

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE / "build.sh"


def build(timeout: float = 1800) -> Path:
    """The Jaeger binary, built first when it is not cached."""
    proc = subprocess.run(["bash", str(BUILD_SH)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{BUILD_SH} failed:\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


class JaegerServer(Service):
    """`jaeger --config <ours>`: OTLP in, memory store, query API and UI out."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.otlp_grpc_port, self.otlp_http_port = free_port(), free_port()
        self.query_port, self.query_grpc_port = free_port(), free_port()
        self.health_port = free_port()
        self.child: Child | None = None

    @property
    def otlp_endpoint(self) -> str:
        """For OTEL_EXPORTER_OTLP_ENDPOINT (OTLP over gRPC)."""
        return f"http://127.0.0.1:{self.otlp_grpc_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """For OTEL_EXPORTER_OTLP_ENDPOINT with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf."""
        return f"http://127.0.0.1:{self.otlp_http_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def config(self) -> dict:
        local = "127.0.0.1"
        return {
            "service": {
                "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
                "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"],
                                         "exporters": ["jaeger_storage_exporter"]}},
                "telemetry": {"metrics": {"level": "none"}, "logs": {"level": "warn"}},
            },
            "extensions": {
                "healthcheckv2": {"use_v2": True,
                                  "http": {"endpoint": f"{local}:{self.health_port}"}},
                "jaeger_query": {"storage": {"traces": "memstore"},
                                 "http": {"endpoint": f"{local}:{self.query_port}"},
                                 "grpc": {"endpoint": f"{local}:{self.query_grpc_port}"}},
                "jaeger_storage": {"backends": {"memstore": {"memory": {
                    "max_traces": 200_000}}}},
            },
            "receivers": {"otlp": {"protocols": {
                "grpc": {"endpoint": f"{local}:{self.otlp_grpc_port}"},
                "http": {"endpoint": f"{local}:{self.otlp_http_port}"}}}},
            "processors": {"batch": {"timeout": "200ms"}},
            "exporters": {"jaeger_storage_exporter": {"trace_storage": "memstore"}},
        }

    def start(self, timeout: float = 60.0) -> JaegerServer:
        binary = build()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "jaeger.json"  # JSON is YAML
        config.write_text(json.dumps(self.config(), indent=2))
        self.child = Child("jaeger", [str(binary), f"--config=file:{config}"],
                           self.data_dir / "jaeger.log").start()
        wait_until(lambda: port_open(self.query_port) and port_open(self.otlp_grpc_port),
                   "jaeger", timeout, self.child.process, self.child.log)
        return self

    def stop(self) -> None:
        # Once its query API has answered a request, Jaeger's graceful stop waits out a
        # timeout of its own (10 s) for connections already closed; its storage is
        # memory, with nothing to flush, so it gets a second before SIGKILL.
        if self.child is not None:
            self.child.stop(timeout=1.0)

    def trace(self, trace_id: str) -> dict | None:
        """One trace from the query API (OTLP JSON: resourceSpans), None when unknown."""
        try:
            with urllib.request.urlopen(
                    f"{self.ui_url}/api/v3/traces/{trace_id}", timeout=10) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def find(self, service: str, since: datetime.datetime) -> dict:
        """The traces with spans of `service` since `since` (OTLP JSON)."""
        query = urllib.parse.urlencode({
            "query.service_name": service,
            "query.start_time_min": since.isoformat().replace("+00:00", "Z"),
            "query.start_time_max": datetime.datetime.now(datetime.timezone.utc).isoformat()
            .replace("+00:00", "Z"),
            "query.num_traces": 1000})
        try:
            with urllib.request.urlopen(f"{self.ui_url}/api/v3/traces?{query}",
                                        timeout=10) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return {"result": {"resourceSpans": []}}
            raise

    def services(self) -> list[str]:
        with urllib.request.urlopen(f"{self.ui_url}/api/v3/services", timeout=10) as answer:
            return json.loads(answer.read()).get("services") or []


def spans_of(trace: dict) -> list[dict]:
    """The spans of an API answer (OTLP JSON), each with its "service" and its "attrs" as
    a plain dict."""
    out = []
    for resource_spans in trace["result"]["resourceSpans"]:
        service = next((a["value"]["stringValue"]
                        for a in resource_spans["resource"]["attributes"]
                        if a["key"] == "service.name"), None)
        for scope in resource_spans["scopeSpans"]:
            for span in scope["spans"]:
                span["service"] = service
                span["attrs"] = {a["key"]: next(iter(a["value"].values()), None)
                                 for a in span.get("attributes", [])}
                out.append(span)
    return out
