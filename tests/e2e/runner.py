"""The pod runner: test infrastructure that plays Deployment controller + kubelet for real.

Every pool Deployment's replica count in the emulator becomes that many real worker
processes (`WorkerProcess`); each has a Pod object in the emulator whose Ready condition
comes from the worker's own /readyz. Prometheus finds the workers through a file_sd file
that the runner keeps in step with the running processes, and the load generator sends
requests to `endpoints()`, the Ready workers, as a Service would.

Faults a cluster produces, on request:
- `hold(pool)`: no capacity for the pool; its new pods stay Pending (Unschedulable);
- `interrupt(pool)`: every running pod of the pool is reclaimed as a spot node would be:
  the pod is marked DisruptionTarget/Failed, leaves the endpoints and its worker drains
  (SIGTERM); the Deployment's replacement then waits for capacity (call `hold` first);
- `terminate_one(pool)`: SIGTERM to one Ready worker, as `kubectl delete pod` does.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import DEPLOYMENTS, PODS, POOL_LABEL, SERVICE_LABEL
from tests.e2e.workers import WorkerProcess

POLL_SECONDS = 0.25


@dataclass
class Replica:
    pod: str
    deployment: str
    service: str
    pool: str
    worker: WorkerProcess | None  # None while Pending (no capacity)
    ready: bool = False
    leaving: bool = False  # deleted or interrupted: out of the endpoints, draining
    terminating: bool = False  # SIGTERMed: in the endpoints until its /readyz fails
    deleted: bool = False  # its Pod object is gone from the API

    @property
    def gone_from_deployment(self) -> bool:
        return self.leaving or self.terminating


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
    ready: dict[str, int] = field(default_factory=dict)  # pool -> Ready workers
    cause: str = ""  # "interrupted" when a fault, not the operator, took capacity away


class PodRunner:
    def __init__(self, cluster: PykubeCluster, namespace: str, sd_file: Path, log_dir: Path,
                 speed_of: Callable[[str, str], int]) -> None:
        """`speed_of(service, pool)` is the characters per second one replica serves."""
        self.cluster = cluster
        self.namespace = namespace
        self.sd_file = sd_file
        self.log_dir = log_dir
        self.speed_of = speed_of
        self.replicas: list[Replica] = []
        self.held: set[str] = set()
        self.scale_actions: list[ScaleAction] = []
        self.capacity: list[CapacitySample] = []
        self.cold_starts: list[float] = []
        self.errors: list[str] = []
        self._desired: dict[tuple[str, str], int] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pod-runner", daemon=True)
        self._write_targets()

    def start(self) -> PodRunner:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        with self._lock:
            for replica in self.replicas:
                if replica.worker is not None:
                    replica.worker.terminate()
            for replica in self.replicas:
                if replica.worker is not None:
                    replica.worker.stop()
                    replica.worker.cleanup()
            self.replicas.clear()
        self._write_targets()

    # What the tests read.
    def endpoints(self) -> list[str]:
        with self._lock:
            return [r.worker.url for r in self.replicas
                    if r.ready and not r.leaving and r.worker is not None]

    def ready_counts(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for r in self.replicas:
                if r.ready and not r.leaving:
                    counts[r.pool] = counts.get(r.pool, 0) + 1
            return counts

    def workers(self) -> list[WorkerProcess]:
        with self._lock:
            return [r.worker for r in self.replicas if r.worker is not None]

    # Faults.
    def hold(self, pool: str) -> None:
        with self._lock:
            self.held.add(pool)

    def release(self, pool: str) -> None:
        with self._lock:
            self.held.discard(pool)

    def interrupt(self, pool: str) -> int:
        with self._lock:
            victims = [r for r in self.replicas if r.pool == pool and not r.leaving]
            for replica in victims:
                replica.leaving = True
                self._patch_status(replica.pod, {
                    "phase": "Failed", "reason": "Shutdown",
                    "message": "spot node reclaimed (e2e interruption)",
                    "conditions": [{"type": "DisruptionTarget", "status": "True",
                                    "reason": "TerminationByKubelet"},
                                   {"type": "Ready", "status": "False"}]})
                if replica.worker is not None:
                    replica.worker.terminate()
            self._sample(cause="interrupted")
            return len(victims)

    def terminate_one(self, pool: str) -> WorkerProcess | None:
        """SIGTERM one Ready worker of `pool` while it stays in the endpoints until its
        /readyz fails, as a Service does during the endpoint-removal race."""
        with self._lock:
            for replica in self.replicas:
                if replica.pool == pool and replica.ready and replica.worker is not None \
                        and not replica.gone_from_deployment:
                    replica.terminating = True
                    replica.worker.terminate()
                    return replica.worker
        return None

    # The loop.
    def _loop(self) -> None:
        for _ in range(10**6):  # bounded: the test's teardown stops it long before
            if self._stop.wait(POLL_SECONDS):
                return
            try:
                self.step()
            except Exception as exc:  # the API may be faulty or mid-teardown: next round
                self.errors.append(repr(exc)[:200])

    def step(self) -> None:
        deployments = self.cluster.list(DEPLOYMENTS, self.namespace)
        with self._lock:
            live_names = set()
            for deployment in deployments:
                live_names.add(deployment["metadata"]["name"])
                self._converge(deployment)
            for replica in self.replicas:
                if replica.deployment not in live_names and not replica.gone_from_deployment:
                    self._remove(replica)
            self._probe()
            self._reap()
            self._sample()
            self._write_targets()

    def _converge(self, deployment: dict[str, Any]) -> None:
        meta = deployment["metadata"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        service, pool = labels.get(SERVICE_LABEL, ""), labels.get(POOL_LABEL, "")
        want = int(deployment["spec"].get("replicas") or 0)
        before = self._desired.get((service, pool), 0)
        if want != before:
            self.scale_actions.append(ScaleAction(time.time(), service, pool, before, want))
            self._desired[(service, pool)] = want
        mine = [r for r in self.replicas
                if r.deployment == meta["name"] and not r.gone_from_deployment]
        # Start the Pending ones whose pool has capacity again.
        for replica in mine:
            if replica.worker is None and pool not in self.held:
                replica.worker = WorkerProcess(service, pool, self.speed_of(service, pool),
                                               self.log_dir)
                self._patch_status(replica.pod, _starting())
        # A ReplicaSet removes Pending pods first, then not-Ready ones, then the newest.
        order = sorted(mine, key=lambda r: (r.worker is not None, r.ready))
        surplus = order[:max(0, len(mine) - want)]
        for replica in surplus:
            self._remove(replica)
        for _ in range(want - len(mine)):
            self._add(meta, labels, service, pool)

    def _add(self, meta: dict[str, Any], labels: dict[str, str], service: str,
             pool: str) -> None:
        name = f"{meta['name']}-{uuid.uuid4().hex[:6]}"
        held = pool in self.held
        worker = None if held else WorkerProcess(service, pool, self.speed_of(service, pool),
                                                 self.log_dir)
        self.cluster.create(PODS, self.namespace, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": dict(labels),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": meta["name"], "uid": meta["uid"]}]},
            "spec": {"containers": []},
            "status": _pending() if held else _starting(),
        })
        self.replicas.append(Replica(name, meta["name"], service, pool, worker))

    def _remove(self, replica: Replica) -> None:
        """Pod deleted: out of the endpoints at once, its worker drains (SIGTERM)."""
        replica.leaving = True
        if replica.worker is not None:
            replica.worker.terminate()
        self._delete_pod(replica)

    def _probe(self) -> None:
        for replica in self.replicas:
            worker = replica.worker
            if worker is None or replica.leaving:
                continue
            if not worker.alive:
                if not replica.terminating:
                    self.errors.append(f"worker {replica.pod} exited: {worker.log()[-300:]}")
                self._remove(replica)
                continue
            ready = worker.probe_ready()
            if ready and not replica.ready and not replica.terminating \
                    and worker.cold_start is not None:
                self.cold_starts.append(worker.cold_start)
            if ready != replica.ready and self._patch_status(replica.pod, _running(ready)):
                replica.ready = ready

    def _reap(self) -> None:
        for replica in list(self.replicas):
            if replica.leaving and (replica.worker is None or not replica.worker.alive):
                if replica.worker is not None:
                    replica.worker.stop()
                    replica.worker.cleanup()
                if self._delete_pod(replica):
                    self.replicas.remove(replica)

    def _sample(self, cause: str = "") -> None:
        counts = self.ready_counts()
        if not self.capacity or self.capacity[-1].ready != counts:
            self.capacity.append(CapacitySample(time.time(), counts, cause))

    def _write_targets(self) -> None:
        """Every running worker is scraped, draining ones too: their last requests count."""
        with self._lock:
            groups = [{"targets": [f"127.0.0.1:{r.worker.port}"],
                       "labels": {"pod": r.pod, "namespace": self.namespace}}
                      for r in self.replicas if r.worker is not None and r.worker.alive]
        text = json.dumps(groups)
        if self.sd_file.exists() and self.sd_file.read_text() == text:
            return
        scratch = self.sd_file.with_suffix(".tmp")
        scratch.write_text(text)
        scratch.replace(self.sd_file)  # atomic: Prometheus never reads half a file

    def _patch_status(self, pod: str, status: dict[str, Any]) -> bool:
        try:
            self.cluster.patch(PODS, self.namespace, pod, {"status": status},
                               subresource="status")
            return True
        except Exception as exc:  # a fault-injected API: the next round writes it again
            self.errors.append(f"status of {pod}: {exc!r}"[:200])
            return False

    def _delete_pod(self, replica: Replica) -> bool:
        if replica.deleted:
            return True
        try:
            self.cluster.delete(PODS, self.namespace, replica.pod)
            replica.deleted = True
        except Exception as exc:  # retried by _reap on the next round
            self.errors.append(f"delete {replica.pod}: {exc!r}"[:200])
        return replica.deleted


def _pending() -> dict[str, Any]:
    return {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False",
                            "reason": "Unschedulable",
                            "message": "0/3 nodes are available: no spot capacity"}]}


def _starting() -> dict[str, Any]:
    return _running(False)


def _running(ready: bool) -> dict[str, Any]:
    return {"phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True"},
                           {"type": "Ready", "status": "True" if ready else "False"}]}
