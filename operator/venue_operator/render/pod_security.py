"""Security settings shared by the venue's pods: nothing runs as root or gains privileges."""

from __future__ import annotations

from typing import Any

# The venue and engine images run as this user; fsGroup makes their volumes writable.
VENUE_UID = 10001
# The official redis and postgres images' own user (Debian-based images).
DATA_STORE_UID = 999


def pod_security_context(uid: int) -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}}
