"""What the e2e tier reads back from the cluster about one namespace, polled every
`POLL` seconds from the real API server: each Deployment's replica count as it changes
(the operator's scale actions), and the Ready capacity per pool (pods Ready and not
being deleted, the ones a Service's EndpointSlice calls ready), with the cause of each
loss: "interrupted" when a pod that left carried DisruptionTarget (an eviction) or its
node was cordoned, tainted for deletion or gone, which is the fault itself rather than a
decision of the operator. It also times each pod's delivery: from the scale-up that
asked for it to its Ready (`deliveries`), which is the cluster's part of a scale-up
(controllers, scheduler, kubelet, the worker's cold start, probes), not the operator's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pykube

POLL = 0.25
SERVICE_LABEL = "elastictts.io/service"
POOL_LABEL = "elastictts.io/pool"


@dataclass
class ScaleAction:
    at: float  # time.time()
    service: str
    pool: str
    before: int
    after: int


@dataclass
class CapacitySample:
    at: float  # time.time()
    ready: dict[str, int] = field(default_factory=dict)  # pool -> Ready pods
    cause: str = ""  # "interrupted" when a fault, not the operator, took capacity away


@dataclass
class Delivery:
    """One pod, from the scale-up of its pool that asked for it to its first Ready."""

    pool: str
    asked: float  # time.time() of the last scale-up of the pool before the pod appeared
    ready: float  # time.time() the pod was first seen Ready

    @property
    def seconds(self) -> float:
        return self.ready - self.asked


def _condition(pod: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def serving(pod: dict[str, Any]) -> bool:
    return _condition(pod, "Ready") and not pod["metadata"].get("deletionTimestamp")


class ClusterObserver:
    def __init__(self, api: pykube.HTTPClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.scale_actions: list[ScaleAction] = []
        self.capacity: list[CapacitySample] = []
        self.errors: list[str] = []
        self._desired: dict[tuple[str, str], int] = {}
        self._ready: dict[str, dict[str, Any]] = {}  # uid -> the pod when last Ready
        self._asked: dict[str, tuple[str, float]] = {}  # uid -> (pool, its scale-up's time)
        self.deliveries: list[Delivery] = []
        self._delivered: set[str] = set()
        self._lost_at: dict[str, float] = {}  # pool -> when a Ready pod of it last left
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"observer-{namespace}",
                                        daemon=True)

    def start(self) -> ClusterObserver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _get(self, path: str, version: str = "v1", namespaced: bool = True) -> list[Any]:
        answer = self.api.request("GET", url=path, version=version,
                                  namespace=self.namespace if namespaced else None, timeout=10)
        answer.raise_for_status()
        return list(answer.json().get("items") or [])

    def _loop(self) -> None:
        for _ in range(10**7):  # bounded; teardown stops it long before
            if self._stop.wait(POLL):
                return
            try:
                self.step()
            except Exception as exc:  # faults or teardown: the next round
                self.errors.append(repr(exc)[:200])

    def step(self) -> None:
        deployments = self._get("deployments", "apps/v1")
        pods = self._get("pods")
        now = time.time()
        with self._lock:
            for deployment in deployments:
                labels = deployment["spec"]["template"]["metadata"].get("labels") or {}
                key = (labels.get(SERVICE_LABEL, ""), labels.get(POOL_LABEL, ""))
                want = int(deployment["spec"].get("replicas") or 0)
                before = self._desired.get(key, 0)
                if want != before:
                    self.scale_actions.append(ScaleAction(now, *key, before, want))
                    self._desired[key] = want
            self._time_deliveries(pods, now)
            current = {p["metadata"]["uid"]: p for p in pods if serving(p)}
            by_uid = {p["metadata"]["uid"]: p for p in pods}
            left = [by_uid.get(uid, pod) for uid, pod in self._ready.items()
                    if uid not in current]
            self._ready = current
            for pod in left:
                self._lost_at[pod["metadata"].get("labels", {}).get(POOL_LABEL, "")] = now
            counts: dict[str, int] = {}
            for pod in current.values():
                pool = pod["metadata"].get("labels", {}).get(POOL_LABEL, "")
                counts[pool] = counts.get(pool, 0) + 1
            if not self.capacity or self.capacity[-1].ready != counts:
                cause = "interrupted" if any(self._interrupted(p) for p in left) else ""
                self.capacity.append(CapacitySample(now, counts, cause))

    def _time_deliveries(self, pods: list[dict[str, Any]], now: float) -> None:
        """A pod first seen is charged to what last asked for one in its pool: a scale-up,
        or the loss of a Ready pod it replaces (else, from when it appeared)."""
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if uid not in self._asked:
                pool = pod["metadata"].get("labels", {}).get(POOL_LABEL, "")
                asks = [a.at for a in self.scale_actions if a.pool == pool and a.after > a.before]
                if pool in self._lost_at:
                    asks.append(self._lost_at[pool])
                self._asked[uid] = (pool, max(asks, default=now))
            if serving(pod) and uid not in self._delivered:
                pool, asked = self._asked[uid]
                self.deliveries.append(Delivery(pool, asked, now))
                self._delivered.add(uid)

    def _interrupted(self, pod: dict[str, Any]) -> bool:
        if _condition(pod, "DisruptionTarget"):
            return True
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return False
        answer = self.api.request("GET", url=f"nodes/{node}", version="v1", timeout=10)
        if answer.status_code == 404:
            return True
        spec = answer.json().get("spec") or {}
        return bool(spec.get("unschedulable") or any(
            t.get("key") == "karpenter.sh/disrupted" for t in spec.get("taints") or []))

    def ready_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.capacity[-1].ready) if self.capacity else {}
