"""One ServiceAccount per part. No part of the venue talks to the Kubernetes API, so none
gets a token (automountServiceAccountToken false) and none is bound to a Role."""

from __future__ import annotations

from typing import Any

from venue_operator.render.labels import Venue, child_name, metadata

PARTS = ("gateway", "submitter", "writer", "engine", "redis", "postgres")


def service_account_name(venue: Venue, part: str) -> str:
    return child_name(venue, part)


def service_account(venue: Venue, part: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(venue, service_account_name(venue, part), part),
        "automountServiceAccountToken": False,
    }


def service_accounts(venue: Venue) -> list[dict[str, Any]]:
    managed = {"redis": venue["spec"]["redis"]["mode"] == "Managed",
               "postgres": venue["spec"]["postgres"]["mode"] == "Managed"}
    return [service_account(venue, part) for part in PARTS if managed.get(part, True)]
