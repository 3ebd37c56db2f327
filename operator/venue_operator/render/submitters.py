"""The batch submitters: one Deployment, its replicas decided by the autoscaler."""

from __future__ import annotations

from typing import Any

from venue_operator.render.labels import Venue, child_name, metadata, selector
from venue_operator.render.python_pod import (
    pod_template,
    scraped,
    serves_metrics,
    venue_container,
)

COMPONENT = "submitter"


def submitter_name(venue: Venue) -> str:
    return child_name(venue, COMPONENT)


def submitter_deployment(venue: Venue, replicas: int) -> dict[str, Any]:
    spec = venue["spec"]["submitters"]
    container = serves_metrics(venue_container(
        venue, COMPONENT, ["submitter"], database=False, resources=spec["resources"]))
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(venue, submitter_name(venue), COMPONENT),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector(venue, COMPONENT)},
            # A new submitter takes over shards by lease before an old one leaves.
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            # Time to finish and acknowledge the batch in flight after SIGTERM.
            "template": scraped(pod_template(venue, COMPONENT, [container],
                                             termination_grace_seconds=60)),
        },
    }
