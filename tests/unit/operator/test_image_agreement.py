"""The images, the operator's manifests and the chart agree on command, user, ports and
image names: a pod the operator or the chart makes runs what the image holds."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

from venue.local.images import IMAGES, REPOSITORY, app_version
from venue_operator.render.engine import engine_statefulset
from venue_operator.render.gateway import gateway_deployment
from venue_operator.render.pod_security import VENUE_UID
from venue_operator.render.submitters import submitter_deployment
from venue_operator.render.writer import writer_deployment

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "tradingvenue"


def runtime_stage(dockerfile: str) -> dict[str, list[str]]:
    """The instructions of the Dockerfile's last stage, by keyword (continuations joined)."""
    text = re.sub(r"\\\n", " ", (ROOT / dockerfile).read_text())
    stage = text.split("\nFROM ")[-1]
    instructions: dict[str, list[str]] = {}
    for line in stage.splitlines()[1:]:
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.setdefault(keyword.upper(), []).append(rest.strip())
    return instructions


def image(name: str) -> dict[str, list[str]]:
    return runtime_stage(next(i.dockerfile for i in IMAGES if i.name == name))


def pod(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def test_every_venue_part_runs_as_the_images_user(venue):
    for name in ("venue", "engine"):
        assert image(name)["USER"] == [f"{VENUE_UID}:{VENUE_UID}"]
    workloads = [gateway_deployment(venue), submitter_deployment(venue, 1),
                 writer_deployment(venue), engine_statefulset(venue, 0)]
    for workload in workloads:
        assert pod(workload)["securityContext"]["runAsUser"] == VENUE_UID
        for container in pod(workload)["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_python_parts_run_the_venue_cli_the_image_puts_on_path(venue):
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "venue" in scripts
    env = " ".join(image("venue")["ENV"])
    assert re.search(r"PATH=/opt/venue/bin:", env)
    for workload in (gateway_deployment(venue), submitter_deployment(venue, 1),
                     writer_deployment(venue)):
        for container in pod(workload)["containers"]:
            assert container["command"] == ["venue"]
            assert container["image"] == f"{REPOSITORY}/venue:{app_version()}"


def test_the_engine_command_is_the_images_entrypoint(venue):
    statefulset = engine_statefulset(venue, 0)
    container = pod(statefulset)["containers"][0]
    assert [json.dumps(container["command"])] == [
        json.dumps(json.loads(e)) for e in image("engine")["ENTRYPOINT"]]
    assert container["image"] == f"{REPOSITORY}/engine:{app_version()}"
    assert "--listen" in container["args"]


def test_the_images_expose_the_ports_the_manifests_name(venue):
    engine_ports = {p["containerPort"] for p in pod(engine_statefulset(venue, 0))["containers"][0]["ports"]}
    assert engine_ports == {int(p) for p in image("engine")["EXPOSE"][0].split()}
    gateway_ports = {p["containerPort"] for p in pod(gateway_deployment(venue))["containers"][0]["ports"]}
    venue_ports = {int(p) for p in image("venue")["EXPOSE"][0].split()}
    assert gateway_ports <= venue_ports
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert re.search(r"containerPort: (\d+)", deployment)[1] in {str(p) for p in venue_ports}


def test_the_chart_runs_the_operator_from_the_venue_image_as_its_user():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["image"]["repository"] == f"{REPOSITORY}/venue"
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == app_version()
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert "command: [python, -m, venue_operator]" in deployment
    assert f"runAsUser: {VENUE_UID}" in deployment
    assert "readOnlyRootFilesystem: true" in deployment


def test_the_operator_uses_no_part_the_venue_image_leaves_out():
    """gateway/Dockerfile drops kubernetes.aio, the client's asyncio twin."""
    for source in (ROOT / "operator").rglob("*.py"):
        assert "kubernetes.aio" not in source.read_text(), source
    assert "kubernetes/aio" in (ROOT / "gateway" / "Dockerfile").read_text()
