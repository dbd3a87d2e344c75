"""Render the children of one TTSService as plain manifests. Pure: no I/O, no clock.

Children (all owned by the TTSService, so they go when it goes):
- one Deployment per pool, ``<service>-<pool>``;
- one Service ``<service>`` over every pool (port 8080 -> the worker);
- one PodDisruptionBudget ``<service>`` (at most one pod of the service voluntarily
  disrupted at a time);
- with ``spec.routing.enabled``: one Service per pool ``<service>-<pool>`` and a Gateway
  API HTTPRoute ``<service>`` whose backendRefs point at those per-pool Services, weighted
  by each pool's ready capacity. A weight needs a backend per pool; one Service across
  pools would let kube-proxy spread traffic by pod count instead.

`render_children` is what the lifecycle handler converges: the children's shape. What
changes with the load has one writer, the tick: it sizes the Deployments through the
replica executor (rendering never sets ``spec.replicas``; a new Deployment starts at 0)
and writes the HTTPRoute, whose weights follow the ready replicas (`render_route`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from elastic_tts.policy import TTSServiceSpec, capacity_per_replica
from elastic_tts.policy.spec import Pool
from elastic_tts.reconcile.kinds import (
    DEPLOYMENTS,
    HTTPROUTES,
    PDBS,
    SERVICES,
    WORKER_PORT,
    WORKER_PROBE_PORT,
    WORKER_PROBE_PORT_NAME,
    pool_child_name,
    selector,
)
from elastic_tts.reconcile.ports import Manifest

DRAIN_SECONDS = 60  # the worker finishes in-flight requests after SIGTERM within this
PRESTOP_SLEEP = 5  # lets endpoints and the gateway drop the pod before SIGTERM
PROBE_PERIOD = 5


def common_labels(service: str, pool: str | None = None) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "elastic-tts-worker",
        "app.kubernetes.io/instance": service,
        "app.kubernetes.io/component": "worker" if pool is None else f"pool-{pool}",
        "app.kubernetes.io/part-of": "elastic-tts",
        "app.kubernetes.io/managed-by": "elastic-tts-operator",
    }
    labels.update(selector(service, pool))
    return labels


def _resources(pool: Pool) -> dict[str, Any]:
    if pool.resources:
        resources: dict[str, Any] = {
            k: dict(v) for k, v in pool.resources.items() if isinstance(v, Mapping)
        }
    elif pool.is_gpu:
        resources = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "16Gi"}}
    else:
        resources = {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "6Gi"}}
    if pool.is_gpu:
        # A GPU pool without a GPU limit would land on the node but see no device.
        resources.setdefault("limits", {}).setdefault("nvidia.com/gpu", 1)
    return resources


def _env(name: str, spec: TTSServiceSpec, pool: Pool) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "TTS_SERVICE", "value": name},
        {"name": "TTS_POOL", "value": pool.name},
        {"name": "TTS_DEVICE", "value": "cuda" if pool.is_gpu else "cpu"},
        {"name": "TTS_ENGINE", "value": spec.engine},
        {"name": "TTS_MODEL", "value": spec.model},
        # What the worker's admission needs to follow the SLO (README, "Admission").
        {"name": "TTS_MAX_CONCURRENCY", "value": str(pool.concurrency)},
        {"name": "TTS_THROUGHPUT", "value": f"{pool.throughput:g}"},
        {"name": "TTS_LATENCY_SLO_SECONDS", "value": f"{spec.scaling.latency_slo_seconds:g}"},
        {"name": "TTS_PROBE_BIND", "value": f"0.0.0.0:{WORKER_PROBE_PORT}"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        # The namespace label on every worker series, which the default queries select on.
        {"name": "TTS_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    if spec.voices:
        env.append({"name": "TTS_VOICES", "value": ",".join(spec.voices)})
    if spec.emotions:
        env.append({"name": "TTS_EMOTIONS", "value": ",".join(spec.emotions)})
    if not pool.is_gpu:
        # The Sambert voice model ignores the pipeline's device and grabs CUDA when it
        # sees one; hiding the devices is the only reliable way to force CPU.
        env.append({"name": "CUDA_VISIBLE_DEVICES", "value": ""})
    return env


def render_deployment(name: str, spec: TTSServiceSpec, pool: Pool) -> Manifest:
    labels = common_labels(name, pool.name)
    startup_failures = math.ceil(pool.cold_start_seconds / PROBE_PERIOD) + 6
    pod_spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": DRAIN_SECONDS + PRESTOP_SLEEP,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "worker",
            "image": spec.image,
            "ports": [{"name": "http", "containerPort": WORKER_PORT},
                      {"name": WORKER_PROBE_PORT_NAME, "containerPort": WORKER_PROBE_PORT}],
            "env": _env(name, spec, pool),
            "resources": _resources(pool),
            "startupProbe": {
                "httpGet": {"path": "/healthz", "port": WORKER_PROBE_PORT_NAME},
                "periodSeconds": PROBE_PERIOD, "failureThreshold": startup_failures,
            },
            "readinessProbe": {
                "httpGet": {"path": "/readyz", "port": WORKER_PROBE_PORT_NAME},
                "periodSeconds": PROBE_PERIOD, "failureThreshold": 2,
            },
            "livenessProbe": {
                "httpGet": {"path": "/healthz", "port": WORKER_PROBE_PORT_NAME},
                "periodSeconds": 10, "failureThreshold": 3,
            },
            # A worker whose engine cannot start writes why to the termination message,
            # which the operator reads from the pod's status (observe.worker_problems).
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SLEEP)]}}},
            "securityContext": {
                "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            },
        }],
    }
    if pool.node_selector:
        pod_spec["nodeSelector"] = dict(pool.node_selector)
    if pool.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in pool.tolerations]
    if pool.affinity:
        pod_spec["affinity"] = dict(pool.affinity)
    return {
        "apiVersion": DEPLOYMENTS.api_version,
        "kind": DEPLOYMENTS.kind,
        "metadata": {"name": pool_child_name(name, pool.name), "labels": labels},
        "spec": {
            "selector": {"matchLabels": selector(name, pool.name)},
            # Surge, never reduce: a rolling update must not cut serving capacity.
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(WORKER_PROBE_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def _service(name: str, service: str, pool: str | None) -> Manifest:
    return {
        "apiVersion": SERVICES.api_version,
        "kind": SERVICES.kind,
        "metadata": {"name": name, "labels": common_labels(service, pool)},
        "spec": {
            "selector": selector(service, pool),
            "ports": [{"name": "http", "port": WORKER_PORT, "targetPort": "http",
                       "protocol": "TCP"}],
        },
    }


def render_pdb(name: str) -> Manifest:
    return {
        "apiVersion": PDBS.api_version,
        "kind": PDBS.kind,
        "metadata": {"name": name, "labels": common_labels(name)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(name)}},
    }


def route_weights(spec: TTSServiceSpec, ready: Mapping[str, int]) -> dict[str, int]:
    """Backend weight per pool: its share of ready capacity, in whole per-mille.

    With nothing ready anywhere every pool gets weight 1, so the first pod to turn ready
    receives traffic instead of the route black-holing."""
    capacity = {
        name: ready.get(name, 0) * capacity_per_replica(spec, pool)
        for name, pool in spec.pools.items()
    }
    total = sum(capacity.values())
    if total <= 0:
        return dict.fromkeys(spec.pools, 1)
    return {name: round(1000 * value / total) for name, value in capacity.items()}


def render_route(name: str, spec: TTSServiceSpec, weights: Mapping[str, int]) -> Manifest:
    routing = spec.routing
    parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                              "name": routing.gateway_ref.name if routing.gateway_ref else None}
    if routing.gateway_ref and routing.gateway_ref.namespace:
        parent["namespace"] = routing.gateway_ref.namespace
    route_spec: dict[str, Any] = {
        "parentRefs": [parent],
        "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [
                {"kind": "Service", "name": pool_child_name(name, pool), "port": WORKER_PORT,
                 "weight": weights.get(pool, 1)}
                for pool in spec.pools
            ],
        }],
    }
    if routing.hostnames:
        route_spec["hostnames"] = list(routing.hostnames)
    return {
        "apiVersion": HTTPROUTES.api_version,
        "kind": HTTPROUTES.kind,
        "metadata": {"name": name, "labels": common_labels(name)},
        "spec": route_spec,
    }


def render_children(name: str, spec: TTSServiceSpec) -> list[Manifest]:
    """The children whose shape follows the spec alone, in the order they are applied."""
    children = [render_deployment(name, spec, pool) for pool in spec.pools.values()]
    children.append(_service(name, name, None))
    children.append(render_pdb(name))
    if spec.routing.enabled:
        children.extend(_service(pool_child_name(name, p), name, p) for p in spec.pools)
    return children


def owned_children(name: str, spec: TTSServiceSpec) -> set[tuple[str, str]]:
    """(kind, name) of every child this spec wants, the tick's HTTPRoute included: what
    pruning must leave alone."""
    owned = {(m["kind"], m["metadata"]["name"]) for m in render_children(name, spec)}
    if spec.routing.enabled:
        owned.add((HTTPROUTES.kind, name))
    return owned


def route_backend_weights(route: Manifest | None) -> dict[str, int]:
    """Backend (Service) name -> weight, as a live HTTPRoute has them."""
    rules = ((route or {}).get("spec") or {}).get("rules") or [{}]
    return {ref.get("name", ""): ref.get("weight", 1)
            for ref in rules[0].get("backendRefs") or []}
