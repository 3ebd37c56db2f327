"""The operator's own settings, read once from its environment (TV_OPERATOR_*)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where Kubernetes tells every pod with a service account its namespace.
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def pod_namespace() -> str | None:
    """The namespace of the pod this runs in; None outside a cluster."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TV_OPERATOR_", extra="ignore")

    # How often each venue's queue depth is read, the autoscaler decides and status is
    # refreshed. HPA's own period; tests shorten it.
    tick_interval_s: float = Field(default=15.0, gt=0)
    # Rate limits of the autoscaler: +100% or +4 per up period, -1 per down period.
    scale_up_period_s: float = Field(default=15.0, ge=0)
    scale_down_period_s: float = Field(default=60.0, ge=0)
    # kopf's liveness endpoint (GET answers 200 while the operator's tasks are alive).
    liveness: str = "http://0.0.0.0:8080/healthz"
    # Prometheus metrics (reconcile durations, autoscaler decisions) at /metrics on this
    # port; unset: not served.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The namespace of the operator's own pods: a managed Redis admits the operator's
    # pods from this namespace only (render.network_policy). Unset outside a cluster,
    # where the operator is no pod a policy could admit.
    namespace: str | None = Field(default_factory=pod_namespace)
