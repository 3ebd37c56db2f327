"""Submitter and writer Deployments."""

from __future__ import annotations

from venue.contract.config import Settings
from venue_operator.render.submitters import submitter_deployment
from venue_operator.render.writer import writer_deployment


def test_submitters_take_their_replicas_from_the_autoscaler(venue):
    deployment = submitter_deployment(venue, replicas=3)
    assert deployment["metadata"]["name"] == "demo-submitter"
    assert deployment["spec"]["replicas"] == 3
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["submitter"]
    env = {e["name"] for e in container["env"]}
    assert {"REDIS_URL", "VENUE_ENGINES", "VENUE_CONFIG", "VENUE_INSTANCE"} <= env
    assert "DATABASE_URL" not in env  # a submitter never touches Postgres


def test_submitters_get_time_to_finish_their_batch(venue):
    pod = submitter_deployment(venue, 1)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 60
    assert pod["automountServiceAccountToken"] is False


def test_writer_migrates_then_writes(venue):
    deployment = writer_deployment(venue)
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["args"] == ["migrate"]
    assert pod["containers"][0]["args"] == ["writer"]
    assert {"REDIS_URL", "DATABASE_URL"} <= {e["name"] for e in pod["containers"][0]["env"]}


def test_the_writer_keeps_what_the_spec_retains(venue, venue_with, monkeypatch):
    def settings_of(deployment) -> Settings:
        for env in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
            if env["name"].startswith("VENUE_RETENTION_"):
                monkeypatch.setenv(env["name"], env["value"])
        return Settings()

    default = settings_of(writer_deployment(venue))
    fields = Settings.model_fields
    assert (default.retention_days, default.retention_action) == (
        fields["retention_days"].default, fields["retention_action"].default) == (0, "drop")
    kept = settings_of(writer_deployment(venue_with({"postgres.retention": {
        "days": 30, "action": "Detach"}})))
    assert (kept.retention_days, kept.retention_action) == (30, "detach")


def test_submitters_and_the_writer_serve_metrics_where_their_annotations_say(venue):
    from venue_operator.render.python_pod import METRICS_PORT
    for workload in (submitter_deployment(venue, 1), writer_deployment(venue)):
        template = workload["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        [container] = template["spec"]["containers"]
        assert annotations["prometheus.io/port"] == str(METRICS_PORT)
        assert {"name": "VENUE_METRICS_PORT", "value": str(METRICS_PORT)} in container["env"]
        assert {"name": "metrics", "containerPort": METRICS_PORT,
                "protocol": "TCP"} in container["ports"]
