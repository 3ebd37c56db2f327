"""The operator's one client of the Kubernetes API (besides kopf's own watching):
server-side apply as field manager "tradingvenue-operator", create-once, get, delete."""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from venue_operator import FIELD_MANAGER

Object = dict[str, Any]


def connect() -> Kube:
    """In a pod, its service account; elsewhere, $KUBECONFIG (or ~/.kube/config)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return Kube(DynamicClient(ApiClient()))


class Kube:
    def __init__(self, client: DynamicClient) -> None:
        self.client = client

    def _resource(self, api_version: str, kind: str):
        return self.client.resources.get(api_version=api_version, kind=kind)

    def apply(self, manifest: Object) -> Object:
        """Server-side apply; `force` because these fields are the operator's to own: a
        hand edit of them is drift, and the operator takes them back."""
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        applied = resource.server_side_apply(
            body=manifest, namespace=manifest["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER, force_conflicts=True)
        return applied.to_dict()

    def create(self, manifest: Object) -> bool:
        """Create unless it exists; never touches an existing object. True when created."""
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        try:
            resource.create(body=manifest, namespace=manifest["metadata"].get("namespace"),
                            field_manager=FIELD_MANAGER)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object | None:
        try:
            return self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """True when it existed and is now being deleted."""
        try:
            self._resource(api_version, kind).delete(name=name, namespace=namespace)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        secret = self.get("v1", "Secret", namespace, name)
        if secret is None:
            return None
        value = (secret.get("data") or {}).get(key)
        return base64.b64decode(value).decode() if value is not None else None
