"""Generated Secrets (Redis and Postgres passwords, the bootstrap API key) and the references
venue pods use to read connection URLs, managed or external.

Generated Secrets are created once and never overwritten: a new password would lock the
venue out of its own Postgres, whose password is set only when its data directory is made.
"""

from __future__ import annotations

import secrets as random
from collections.abc import Callable
from typing import Any

from venue.accounts import new_key

from venue_operator.render.labels import Venue, child_name, metadata, namespace

URL_KEY = "url"
PASSWORD_KEY = "password"
API_KEY_KEY = "key"
POSTGRES_USER = "venue"
POSTGRES_DB = "venue"
REDIS_PORT = 6379
POSTGRES_PORT = 5432


def new_password() -> str:
    # Hex: safe inside a URL without quoting, 192 random bits.
    return random.token_hex(24)


def is_managed(venue: Venue, part: str) -> bool:
    return venue["spec"][part]["mode"] == "Managed"


def redis_host(venue: Venue) -> str:
    return f"{child_name(venue, 'redis')}.{namespace(venue)}.svc"


def postgres_host(venue: Venue) -> str:
    return f"{child_name(venue, 'postgres')}.{namespace(venue)}.svc"


def redis_secret(venue: Venue, password: str) -> dict[str, Any]:
    url = f"redis://:{password}@{redis_host(venue)}:{REDIS_PORT}/0"
    return _secret(venue, "redis", {PASSWORD_KEY: password, URL_KEY: url})


def postgres_secret(venue: Venue, password: str) -> dict[str, Any]:
    url = (f"postgresql://{POSTGRES_USER}:{password}@{postgres_host(venue)}:{POSTGRES_PORT}"
           f"/{POSTGRES_DB}")
    return _secret(venue, "postgres", {PASSWORD_KEY: password, URL_KEY: url})


def api_key_secret(venue: Venue, key: str) -> dict[str, Any]:
    return _secret(venue, "api-key", {API_KEY_KEY: key})


def generated_secrets(venue: Venue, password: Callable[[], str] = new_password,
                      api_key: Callable[[], str] = new_key) -> list[dict[str, Any]]:
    """The Secrets the operator makes for this venue (only for managed parts)."""
    made = []
    if is_managed(venue, "redis"):
        made.append(redis_secret(venue, password()))
    if is_managed(venue, "postgres"):
        made.append(postgres_secret(venue, password()))
    made.append(api_key_secret(venue, api_key()))
    return made


def url_ref(venue: Venue, part: str) -> dict[str, str]:
    """{name, key} of the Secret holding `part`'s (redis or postgres) connection URL."""
    if is_managed(venue, part):
        return {"name": child_name(venue, part), "key": URL_KEY}
    ref = venue["spec"][part]["external"]["urlSecret"]
    return {"name": ref["name"], "key": ref.get("key", URL_KEY)}


def api_key_ref(venue: Venue) -> dict[str, str]:
    return {"name": child_name(venue, "api-key"), "key": API_KEY_KEY}


def _secret(venue: Venue, part: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(venue, child_name(venue, part), part),
        "type": "Opaque",
        "stringData": data,
    }
