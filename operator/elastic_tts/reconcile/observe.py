"""Observe: turn Deployments, Pods, Nodes and Prometheus answers into an Observation.

Pure functions over API objects, plus `read_load`, which asks the LoadSource port.

A pod counts as *interrupted* (spot reclaimed, or about to be) when it was evicted or
shut down with its node, carries the DisruptionTarget condition, or sits on a node that
is being deleted or carries one of the termination taints below. Interrupted pods are
not counted as ready: their capacity is about to vanish, so make-before-break must not
lean on it. Each interrupted pod is reported once (by uid), so a lingering Failed pod
does not put spot back into back-off after the back-off ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from elastic_tts.policy import PoolState, TTSServiceSpec
from elastic_tts.reconcile.kinds import POOL_LABEL
from elastic_tts.reconcile.ports import LoadQuery, LoadSource, Manifest, MetricsUnavailable

# Taints that mean "this node is going away" (cluster-autoscaler, cordon, AWS NTH, GKE,
# Karpenter).
TERMINATION_TAINTS = frozenset({
    "ToBeDeletedByClusterAutoscaler",
    "node.kubernetes.io/unschedulable",
    "aws-node-termination-handler/spot-itn",
    "aws-node-termination-handler/rebalance-recommendation",
    "cloud.google.com/impending-node-termination",
    "karpenter.sh/disrupted",
    "karpenter.sh/disruption",
})
INTERRUPTED_REASONS = frozenset({"Evicted", "Shutdown", "NodeShutdown", "Terminated",
                                 "NodeLost", "Preempting"})


def parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def node_going_away(node: Manifest) -> bool:
    if node.get("metadata", {}).get("deletionTimestamp"):
        return True
    taints = node.get("spec", {}).get("taints") or []
    return any(t.get("key") in TERMINATION_TAINTS for t in taints)


def _condition(pod: Manifest, kind: str) -> bool:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status")) == "True"
    return False


def pod_interrupted(pod: Manifest, doomed_nodes: set[str]) -> bool:
    status = pod.get("status", {})
    if status.get("reason") in INTERRUPTED_REASONS:
        return True
    if _condition(pod, "DisruptionTarget"):
        return True
    return pod.get("spec", {}).get("nodeName") in doomed_nodes


# Waiting reasons that mean a worker container cannot start (its message says why).
STUCK_REASONS = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull",
                           "CreateContainerConfigError", "CreateContainerError",
                           "InvalidImageName", "RunContainerError"})
WORKER_CONTAINER = "worker"


def worker_problem(pod: Manifest) -> str | None:
    """Why this pod's worker cannot serve, as its container status tells: the termination
    message a worker writes when its engine cannot start (kept in lastState once kubelet
    has restarted it), or a waiting reason such as ImagePullBackOff. None if it can."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") != WORKER_CONTAINER or status.get("ready"):
            continue
        waiting = (status.get("state") or {}).get("waiting") or {}
        last = (status.get("lastState") or {}).get("terminated") or {}
        if last.get("message") and last.get("reason") != "Completed":
            return str(last["message"]).strip().splitlines()[0][:300]
        if waiting.get("reason") in STUCK_REASONS:
            return f"{waiting['reason']}: {waiting.get('message') or 'no message'}"[:300]
    return None


@dataclass
class PoolView:
    """What one tick learnt about the pools, beyond the engine's PoolState."""

    states: dict[str, PoolState] = field(default_factory=dict)
    interrupted_uids: set[str] = field(default_factory=set)  # all currently interrupted
    missing: list[str] = field(default_factory=list)  # pools without a Deployment
    # pool -> "<pod>: <why its worker cannot serve>", for the first such pod
    worker_problems: dict[str, str] = field(default_factory=dict)


def observe_pools(spec: TTSServiceSpec, deployments: Iterable[Manifest],
                  pods: Iterable[Manifest], nodes: Iterable[Manifest],
                  seen_interrupted: set[str], now: float) -> PoolView:
    by_pool: dict[str, Manifest] = {}
    deployment: Manifest | None
    for deployment in deployments:
        pool = deployment.get("metadata", {}).get("labels", {}).get(POOL_LABEL)
        if pool in spec.pools:
            by_pool[pool] = deployment
    doomed = {n["metadata"]["name"] for n in nodes if node_going_away(n)}
    counts = {name: {"ready": 0, "pending": 0, "oldest": now, "new_interrupts": 0}
              for name in spec.pools}
    view = PoolView(missing=[p for p in spec.pools if p not in by_pool])
    for pod in pods:
        meta = pod.get("metadata", {})
        pool = meta.get("labels", {}).get(POOL_LABEL)
        if pool not in counts:
            continue
        tally = counts[pool]
        uid = meta.get("uid") or meta.get("name", "")
        if pod_interrupted(pod, doomed):
            view.interrupted_uids.add(uid)
            if uid not in seen_interrupted:
                tally["new_interrupts"] += 1
            continue
        if meta.get("deletionTimestamp"):
            continue  # draining: neither serving capacity nor waiting for it
        problem = worker_problem(pod)
        if problem is not None:
            view.worker_problems.setdefault(pool, f"{meta.get('name', '?')}: {problem}")
        phase = pod.get("status", {}).get("phase")
        if phase == "Running" and _condition(pod, "Ready"):
            tally["ready"] += 1
        elif phase in (None, "Pending"):
            tally["pending"] += 1
            created = parse_time(meta.get("creationTimestamp"))
            if created is not None:
                tally["oldest"] = min(tally["oldest"], created)
    for name, tally in counts.items():
        deployment = by_pool.get(name)
        current = int((deployment or {}).get("spec", {}).get("replicas") or 0)
        view.states[name] = PoolState(
            current=current,
            ready=int(tally["ready"]),
            pending=int(tally["pending"]),
            pending_seconds=max(0.0, now - tally["oldest"]) if tally["pending"] else 0.0,
            interrupted=int(tally["new_interrupts"]),
        )
    return view


@dataclass(frozen=True)
class Load:
    """Rates in the spec's metric unit for the engine, plus display figures for status."""

    short_rate: float
    long_rate: float
    requests_per_second: float
    characters_per_second: float
    # pool -> {"requestsPerSecond": .., "charactersPerSecond": ..}
    per_pool: Mapping[str, Mapping[str, float]]


def read_load(source: LoadSource, spec: TTSServiceSpec, service: str, namespace: str,
              windows: tuple[str, str]) -> Load:
    """The short and long rates. An empty answer means no traffic (nothing served yet,
    or every pod scaled away), which is a rate of zero, as in KEDA. Raises
    MetricsUnavailable when the source cannot be asked."""
    metric = spec.scaling.metric
    by_window = source.load(LoadQuery(namespace, service, metric, windows,
                                      spec.scaling.prometheus))
    short, long = by_window[windows[0]], by_window[windows[1]]
    per_pool = {
        name: {"requestsPerSecond": round(short.pool(name).requests, 3),
               "charactersPerSecond": round(short.pool(name).characters, 3)}
        for name in spec.pools
    }
    return Load(short.total(metric), long.total(metric), short.total("requests"),
                short.total("characters"), per_pool)


__all__ = ["Load", "MetricsUnavailable", "PoolView", "observe_pools", "read_load"]
