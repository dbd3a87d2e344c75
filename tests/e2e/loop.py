"""The closed loop of one scenario, on the local cluster:
workers -> Prometheus -> operator -> Deployments -> scheduler -> kubelet -> workers.

`Loop` puts together, for one namespace of its own:
- node pools of its own (``runtime="process"``: one node each to begin with), whose
  kubelet (`ProcessKubelet`) runs every pod bound there as a real worker;
- the TTSService, its pools pinned to those nodes;
- the operator, as `elastic-tts run --namespace NS` under the chart's ServiceAccount
  token, talking to the API server through the fault proxy (so a test can kill it, start
  it again, or make the API fail);
- what the tests read back: a `ClusterObserver` (scale actions and Ready capacity), the
  Service's Ready endpoints (`ServiceEndpoints`, which the load generator sends to), and a
  `TickRecorder` that watches the TTSService and keeps every status the operator wrote.
Prometheus and the proxy are shared by the session (see conftest).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pykube
import requests

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import PODS, POOL_LABEL, SERVICE_LABEL, TTSSERVICES
from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.nodes import NodePool
from elastic_tts_dev.operator import OperatorProcess
from tests.e2e.kubelet import ProcessKubelet, reach
from tests.e2e.loadgen import ServiceEndpoints
from tests.e2e.observer import ClusterObserver, serving

RATE_WINDOWS = "--rate-windows=4s,8s"  # Prometheus scrapes every second here
BURST_WINDOW = "--burst-window=2s"  # two of its scrapes, as 30 s is two of the chart's
# Every tick's status, so that the replay sees each tick's demand and decision.
EVERY_TICK = "--status-refresh-ticks=1"


@dataclass(frozen=True)
class Tick:
    """One control-loop tick, as the operator wrote it to status."""

    at: float  # the tick's `now` (the last memory sample's time)
    demand: float  # capacity units wanted
    replicas: dict[str, int]  # the decision
    pools: dict[str, dict[str, Any]]  # what it observed per pool (current, ready, ...)
    memory: dict[str, Any]
    status: dict[str, Any]


class TickRecorder:
    """A watch on the namespace's TTSServices (resumed from the last resourceVersion, as
    a client-go informer does); one `Tick` per new decision time."""

    def __init__(self, api: pykube.HTTPClient, namespace: str, name: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.ticks: list[Tick] = []
        self.statuses: list[tuple[float, dict[str, Any]]] = []  # (time.time(), status)
        self.reconnects = 0
        self._version = ""
        self._response: requests.Response | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tick-recorder", daemon=True)

    def start(self) -> TickRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            response.close()  # unblocks the read of a watch that would stream forever
        self._thread.join(15)

    def _get(self, **params: str) -> requests.Response:
        response: requests.Response = self.api.request(
            "GET", url=TTSSERVICES.plural, version=TTSSERVICES.api_version,
            namespace=self.namespace, params=params, stream=bool(params.get("watch")),
            timeout=(5, 40))
        return response

    def _relist(self) -> None:
        listed = self._get()
        listed.raise_for_status()
        for obj in listed.json().get("items") or []:
            self._record(obj)
        self._version = listed.json()["metadata"]["resourceVersion"]

    def _watch(self) -> None:
        for _ in range(10_000):  # bounded; each pass lasts a watch (30 s) or until stop
            if self._stop.is_set():
                return
            try:
                if not self._version:
                    self._relist()
                with self._get(watch="true", resourceVersion=self._version,
                               allowWatchBookmarks="true", timeoutSeconds="30") as response:
                    self._response = response
                    for line in response.iter_lines():
                        if self._stop.is_set():
                            return
                        if line:
                            self._event(json.loads(line))
            except (requests.RequestException, ValueError, AttributeError):
                time.sleep(0.2)  # AttributeError: the response closed under the read
            self.reconnects += 1

    def _event(self, event: dict[str, Any]) -> None:
        obj = event.get("object") or {}
        if event.get("type") == "ERROR":  # 410 Gone: too old a version, list again
            self._version = ""
            return
        self._version = obj.get("metadata", {}).get("resourceVersion", self._version)
        if event.get("type") in ("ADDED", "MODIFIED"):
            self._record(obj)

    def _record(self, obj: dict[str, Any]) -> None:
        if obj.get("metadata", {}).get("name") != self.name:
            return
        status = obj.get("status") or {}
        self.statuses.append((time.time(), status))
        samples = ((status.get("engine") or {}).get("memory") or {}).get("samples") or []
        decision = status.get("lastDecision") or {}
        if not samples or "replicas" not in decision:
            return
        at, demand = float(samples[-1][0]), float(samples[-1][1])
        if self.ticks and at <= self.ticks[-1].at:
            return  # an older write seen again, or a write without a new tick
        self.ticks.append(Tick(at, demand, dict(decision["replicas"]),
                               dict(status.get("pools") or {}),
                               dict(status["engine"]["memory"]), status))


class Loop:
    def __init__(self, cluster: LocalCluster, admin: pykube.HTTPClient,
                 operator_kubeconfig: Path, namespace: str, service: dict[str, Any],
                 node_pools: Mapping[str, NodePool], speeds: Mapping[str, float],
                 log_dir: Path, nodes_per_pool: Mapping[str, int]) -> None:
        """`node_pools` maps each TTSService pool to its node pool; `nodes_per_pool`
        says how many nodes each starts with."""
        self.local = cluster
        self.api = admin
        self.cluster = PykubeCluster(admin)
        self.namespace = namespace
        self.service = service
        self.name = service["metadata"]["name"]
        self.node_pools = dict(node_pools)
        self.nodes_per_pool = dict(nodes_per_pool)
        self.kubelet = ProcessKubelet(admin, namespace, log_dir,
                                      {p.name: speeds[pool] for pool, p in node_pools.items()})
        self.observer = ClusterObserver(admin, namespace)
        self.endpoints = ServiceEndpoints(admin, namespace, self.name)
        self.operator = OperatorProcess(operator_kubeconfig, log_dir / "operator.log",
                                        namespaces=[namespace],
                                        extra_args=[RATE_WINDOWS, BURST_WINDOW, EVERY_TICK])
        self.recorder = TickRecorder(admin, namespace, self.name)

    def start(self) -> Loop:
        for pool, nodes in self.node_pools.items():
            if self.nodes_per_pool.get(pool, 0):
                self.kubelet.register(nodes, self.nodes_per_pool[pool])
        self.kubelet.start()
        self.observer.start()
        self.recorder.start()
        self.cluster.create(TTSSERVICES, self.namespace, self.service)
        self.operator.start()
        self.endpoints.start()
        return self

    def stop(self) -> None:
        self.operator.stop()
        self.endpoints.stop()
        self.recorder.stop()
        self.observer.stop()
        self.kubelet.stop()
        self.kubelet.delete_nodes()

    # -- reading ------------------------------------------------------------------------

    def status(self, name: str | None = None) -> dict[str, Any]:
        obj = self.cluster.get(TTSSERVICES, self.namespace, name or self.name)
        return dict((obj or {}).get("status") or {})

    def ready_counts(self) -> dict[str, int]:
        return self.observer.ready_counts()

    def throughput(self, pool: str) -> float:
        return float(self.service["spec"]["pools"][pool]["throughput"])

    def pool_of(self, url: str) -> str:
        """The pool of the pod behind an endpoint URL the client sent to ("" if unknown)."""
        host = urlsplit(url).hostname or ""
        return next((pool for ip, pool in self.kubelet.record.pools.items()
                     if reach(ip) == host), "")

    def ready_capacity(self, counts: Mapping[str, int]) -> float:
        """What the Ready workers serve behind the round-robin Service, in chars/s."""
        used = [p for p, n in counts.items() if n > 0]
        if not used:
            return 0.0
        return sum(counts[p] for p in used) * min(self.throughput(p) for p in used)

    def pods(self, pool: str) -> list[dict[str, Any]]:
        return self.cluster.list(PODS, self.namespace, {SERVICE_LABEL: self.name,
                                                        POOL_LABEL: pool})

    # -- faults -------------------------------------------------------------------------

    def add_nodes(self, pool: str, count: int = 1) -> list[str]:
        """Capacity for `pool` (its node pool gets `count` more nodes)."""
        return self.kubelet.register(self.node_pools[pool], count)

    def nodes_of(self, pool: str) -> list[str]:
        nodes = self.node_pools[pool]
        return sorted(n for n, p in self.kubelet.nodes.items() if p is nodes)

    def interrupt(self, pool: str, notice: float = 20.0) -> int:
        """Reclaim every node of `pool` as a spot interruption does (taint, cordon,
        evict through the Eviction API, delete the Node); the number of pods it had."""
        victims = 0
        for node in self.nodes_of(pool):
            victims += len([p for p in self.local.pods_on(node)
                            if p.metadata.namespace == self.namespace])
            self.local.interrupt_node(node, notice=notice)
        return victims

    def delete_ready_pod(self, pool: str) -> str | None:
        """`kubectl delete pod` of one Ready pod of `pool` (graceful: preStop, SIGTERM,
        drain); its name, or None when the pool has no Ready pod."""
        for pod in self.pods(pool):
            if serving(pod):
                name = str(pod["metadata"]["name"])
                self.local.kubectl("-n", self.namespace, "delete", "pod", name, "--wait=false")
                return name
        return None
