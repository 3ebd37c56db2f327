"""Status conditions from the children's real state."""

from __future__ import annotations

from venue.contract.health import Problem
from venue_operator.autoscale import History, Policy, decide
from venue_operator.conditions import Observed, conditions

NOW = "2025-01-01T00:00:00Z"
LATER = "2025-01-01T00:05:00Z"


def workload(name, replicas, ready, generation=1, observed=1, field="readyReplicas",
             updated=None):
    updated = ready if updated is None else updated
    return {"metadata": {"name": name, "generation": generation},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, field: ready,
                       "replicas": replicas}}


def healthy(venue_name="demo"):
    deployments = {f"{venue_name}-{p}": workload(f"{venue_name}-{p}", 1, 1,
                                                  field="availableReplicas")
                   for p in ("gateway", "submitter", "writer")}
    statefulsets = {f"{venue_name}-{p}": workload(f"{venue_name}-{p}", 1, 1)
                    for p in ("engine-0", "redis", "postgres")}
    return deployments, statefulsets


def by_type(made):
    return {c["type"]: c for c in made}


def a_decision():
    return decide(0, 1, 0, Policy(1, 4, 100), History())


def test_all_parts_ready_makes_the_venue_ready(venue):
    deployments, statefulsets = healthy()
    made, phase = conditions(venue, Observed(deployments, statefulsets, None), a_decision(), NOW)
    assert phase == "Ready"
    status = {t: c["status"] for t, c in by_type(made).items()}
    assert status == {"Ready": "True", "EngineReady": "True", "GatewayReady": "True",
                      "QueueReady": "True", "DatabaseReady": "True", "Scaling": "False"}
    for condition in made:
        assert condition["observedGeneration"] == 3
        assert condition["lastTransitionTime"] == NOW
        assert condition["reason"] and condition["message"]


def test_an_engine_lost_after_ready_is_named_and_degraded(venue_with):
    venue = venue_with(status={"phase": "Ready"})
    deployments, statefulsets = healthy()
    statefulsets["demo-engine-0"] = workload("demo-engine-0", 1, 0, updated=1)
    made, phase = conditions(venue, Observed(deployments, statefulsets, None), a_decision(), NOW)
    engine = by_type(made)["EngineReady"]
    assert engine["status"] == "False" and "demo-engine-0" in engine["message"]
    assert by_type(made)["Ready"]["status"] == "False"
    assert phase == "Degraded"


def test_a_venue_coming_up_is_progressing_not_degraded(venue):
    deployments, statefulsets = healthy()
    statefulsets["demo-redis"] = workload("demo-redis", 1, 0, updated=1)
    _, phase = conditions(venue, Observed(deployments, statefulsets, None), a_decision(), NOW)
    assert phase == "Progressing"


def test_missing_children_mean_progressing(venue):
    made, phase = conditions(venue, Observed({}, {}, None), None, NOW)
    assert phase == "Progressing"
    assert by_type(made)["GatewayReady"]["reason"] == "NotCreated"


def test_a_rollout_under_way_is_progressing(venue):
    deployments, statefulsets = healthy()
    deployments["demo-gateway"] = workload("demo-gateway", 2, 1, generation=2, observed=2,
                                           field="availableReplicas")
    made, phase = conditions(venue, Observed(deployments, statefulsets, None), a_decision(), NOW)
    assert by_type(made)["GatewayReady"]["reason"] == "RollingOut"
    assert phase == "Progressing"


def test_redis_unreachable_is_queue_not_ready(venue):
    deployments, statefulsets = healthy()
    made, _ = conditions(venue, Observed(deployments, statefulsets, "Connection refused"),
                         a_decision(), NOW)
    queue = by_type(made)["QueueReady"]
    assert queue["status"] == "False" and queue["reason"] == "RedisUnreachable"
    assert "Connection refused" in queue["message"]


def test_external_postgres_is_ready_when_its_secret_is_there(venue_with):
    venue = venue_with({"postgres": {"mode": "External", "external": {"urlSecret": {"name": "db"}}}})
    deployments, statefulsets = healthy()
    del statefulsets["demo-postgres"]
    made, _ = conditions(venue, Observed(deployments, statefulsets, None), a_decision(), NOW)
    assert by_type(made)["DatabaseReady"]["status"] == "True"
    made, _ = conditions(venue, Observed(deployments, statefulsets, None, "Secret db is missing"),
                         a_decision(), NOW)
    assert by_type(made)["DatabaseReady"]["reason"] == "SecretMissing"


def test_transition_time_moves_only_when_the_status_does(venue_with):
    deployments, statefulsets = healthy()
    first, _ = conditions(venue_with(), Observed(deployments, statefulsets, None), a_decision(), NOW)
    again, _ = conditions(venue_with(status={"conditions": first}),
                          Observed(deployments, statefulsets, None), a_decision(), LATER)
    assert by_type(again)["Ready"]["lastTransitionTime"] == NOW
    statefulsets["demo-redis"] = workload("demo-redis", 1, 0)
    changed, _ = conditions(venue_with(status={"conditions": first}),
                            Observed(deployments, statefulsets, None), a_decision(), LATER)
    assert by_type(changed)["Ready"]["lastTransitionTime"] == LATER
    assert by_type(changed)["EngineReady"]["lastTransitionTime"] == NOW


def test_scaling_is_true_while_submitters_change(venue):
    deployments, statefulsets = healthy()
    burst = decide(0, 1, 350, Policy(1, 4, 100), History())
    made, _ = conditions(venue, Observed(deployments, statefulsets, None), burst, NOW)
    scaling = by_type(made)["Scaling"]
    assert scaling["status"] == "True" and scaling["reason"] == "ScaledUp"


def test_a_stalled_writer_and_an_unreachable_engine_are_named_though_every_pod_is_ready(
        venue_with):
    venue = venue_with(status={"phase": "Ready"})
    deployments, statefulsets = healthy()
    said = [Problem("persistence", "persistence has not moved for 42 s while engine events "
                                   "await it"),
            Problem("matching", "submitter s-1 cannot reach engine partition 0: UNAVAILABLE")]
    made, phase = conditions(venue, Observed(deployments, statefulsets, None, None, said),
                             a_decision(), NOW)
    database, engine = by_type(made)["DatabaseReady"], by_type(made)["EngineReady"]
    assert (database["status"], database["reason"]) == ("False", "PersistenceStopped")
    assert database["message"] == said[0].detail
    assert (engine["status"], engine["reason"]) == ("False", "EngineUnreachable")
    assert engine["message"] == said[1].detail
    assert by_type(made)["Ready"]["message"] == "not ready: EngineReady, DatabaseReady"
    assert phase == "Degraded"
