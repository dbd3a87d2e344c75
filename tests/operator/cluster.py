"""Test-side stand-ins for the controllers a real cluster runs next to the API server,
and for the operator process.

`FakeKubelet` plays Deployment controller + scheduler + kubelet: one Pod per desired
replica of every Deployment, Ready at once, unless the test says a pool's pods stay
Pending (no spot capacity). `OperatorThread` runs the real operator (kopf, the handlers
registered by `elastic_tts.handlers`) in a thread against the emulator.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.handlers import operator_task
from elastic_tts.reconcile.kinds import DEPLOYMENTS, PODS, POOL_LABEL, SERVICE_LABEL
from elastic_tts.reconcile.tick import TickSettings

T = TypeVar("T")

# Rates over seconds, not minutes: Prometheus scrapes every second in these tests.
TEST_SETTINGS = TickSettings(rate_windows=("4s", "8s"), node_cache_seconds=1.0)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0,
             every: float = 0.25) -> T:
    """Poll `probe` until it returns something truthy; bounded in time and count."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    for _ in range(int(timeout / every) + 1):
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            break
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def _pod_status(ready: bool) -> dict[str, Any]:
    if ready:
        return {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}]}
    return {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False",
                            "reason": "Unschedulable"}]}


class FakeKubelet:
    def __init__(self, cluster: PykubeCluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.pending: set[tuple[str, str]] = set()  # (service, pool) whose pods stay Pending
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-kubelet", daemon=True)

    def start(self) -> FakeKubelet:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.step()
            except Exception:  # the API may be mid-teardown; try again next round
                continue

    def step(self) -> None:
        pods = self.cluster.list(PODS, self.namespace)
        for deployment in self.cluster.list(DEPLOYMENTS, self.namespace):
            meta = deployment["metadata"]
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            key = (labels.get(SERVICE_LABEL, ""), labels.get(POOL_LABEL, ""))
            ready = key not in self.pending
            mine = [p for p in pods if p["metadata"].get("labels", {}).get(POOL_LABEL) == key[1]
                    and p["metadata"].get("labels", {}).get(SERVICE_LABEL) == key[0]]
            want = int(deployment["spec"].get("replicas") or 0)
            for pod in mine[want:]:
                self.cluster.delete(PODS, self.namespace, pod["metadata"]["name"])
            for pod in mine[:want]:
                if (pod["status"].get("phase") == "Running") != ready:
                    self.cluster.patch(PODS, self.namespace, pod["metadata"]["name"],
                                       {"status": _pod_status(ready)}, subresource="status")
            for _ in range(want - len(mine)):
                self.cluster.create(PODS, self.namespace, {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {
                        "name": f"{meta['name']}-{uuid.uuid4().hex[:6]}", "labels": labels,
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": meta["name"], "uid": meta["uid"]}],
                    },
                    "spec": {"containers": []},
                    "status": _pod_status(ready),
                })


class OperatorThread:
    """The operator, as `elastic-tts run` starts it, in a thread with its own loop."""

    def __init__(self, namespace: str, settings: TickSettings = TEST_SETTINGS,
                 liveness_endpoint: str | None = None) -> None:
        self.namespace = namespace
        self.settings = settings
        self.liveness_endpoint = liveness_endpoint
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="operator", daemon=True)

    def start(self) -> OperatorThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"operator did not start within 30 s: {self._error!r}")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        if self._thread.is_alive():
            raise RuntimeError("operator did not stop within 30 s")

    def _run(self) -> None:
        try:
            asyncio.run(operator_task(
                namespaces=[self.namespace], standalone=True,
                liveness_endpoint=self.liveness_endpoint, settings=self.settings,
                stop_flag=self._stop, ready_flag=self._ready))
        except BaseException as exc:  # surfaced by start() or the test's assertions
            self._error = exc
            self._ready.set()
