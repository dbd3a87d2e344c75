"""The API resources the operator reads or writes, the labels it puts on children, and
how children are named. RBAC in the chart mirrors this list (see README, "The operator")."""

from __future__ import annotations

from elastic_tts.policy.spec import pool_child_name
from elastic_tts.reconcile.ports import Kind

GROUP = "elastictts.io"
VERSION = "v1alpha1"
PLURAL = "ttsservices"

TTSSERVICES = Kind(f"{GROUP}/{VERSION}", PLURAL, "TTSService")
DEPLOYMENTS = Kind("apps/v1", "deployments", "Deployment")
SERVICES = Kind("v1", "services", "Service")
PODS = Kind("v1", "pods", "Pod")
NODES = Kind("v1", "nodes", "Node", namespaced=False)
PDBS = Kind("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget")
HTTPROUTES = Kind("gateway.networking.k8s.io/v1", "httproutes", "HTTPRoute")

SERVICE_LABEL = f"{GROUP}/service"
POOL_LABEL = f"{GROUP}/pool"
LAST_APPLIED = f"{GROUP}/last-applied"

WORKER_PORT = 8080
# The worker's probe listener: /healthz, /readyz and /metrics on a socket of their own, so
# that no client of the API port can starve them (TTS_PROBE_BIND).
WORKER_PROBE_PORT = 8081
WORKER_PROBE_PORT_NAME = "metrics"


__all__ = ["pool_child_name"]  # named by the spec model, which checks that names fit


def selector(service: str, pool: str | None = None) -> dict[str, str]:
    labels = {SERVICE_LABEL: service}
    if pool is not None:
        labels[POOL_LABEL] = pool
    return labels
