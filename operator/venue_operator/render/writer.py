"""The database writer: one Deployment that copies engine reports into Postgres."""

from __future__ import annotations

from typing import Any

from venue_operator.render.labels import Venue, child_name, metadata, selector
from venue_operator.render.python_pod import (
    migrate_container,
    pod_template,
    scraped,
    serves_metrics,
    venue_container,
)

COMPONENT = "writer"


def writer_name(venue: Venue) -> str:
    return child_name(venue, COMPONENT)


def writer_deployment(venue: Venue) -> dict[str, Any]:
    spec = venue["spec"]["writer"]
    container = serves_metrics(venue_container(
        venue, COMPONENT, ["writer"], database=True, resources=spec["resources"]))
    # The writer keeps the day partitions and lets expired days go (venue.db.partitions).
    retention = venue["spec"]["postgres"]["retention"]
    container["env"] += [
        {"name": "VENUE_RETENTION_DAYS", "value": str(retention["days"])},
        {"name": "VENUE_RETENTION_ACTION", "value": retention["action"].lower()}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(venue, writer_name(venue), COMPONENT),
        "spec": {
            "replicas": spec["replicas"],
            "selector": {"matchLabels": selector(venue, COMPONENT)},
            "template": scraped(pod_template(
                venue, COMPONENT, [container],
                init_containers=[migrate_container(venue, spec["resources"])],
                termination_grace_seconds=60)),
        },
    }
