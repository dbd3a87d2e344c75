"""Restarts, outages and a standby on the local cluster: an operator restarted mid
scale-down resumes from the memory it left in status (no flapping, seen through a watch
of the Deployment); a Prometheus outage holds replicas and says so; two peered operators
act one at a time, and the standby takes over when the active one is killed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import TTSSERVICES
from elastic_tts.reconcile.ports import Kind
from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import CPU, GPU, tts
from tests.cluster.fixtures import OperatorFactory
from tests.operator.cluster import wait_for
from tests.operator.test_operator_lifecycle import condition, events, replicas, status_of

KOPF_PEERINGS = Kind("kopf.dev/v1", "kopfpeerings", "KopfPeering")
# kopf's peering lifetime: a killed operator's record counts as alive this long.
PEERING_LIFETIME = 60.0


class ReplicaHistory:
    """Every spec.replicas a Deployment had, from a watch (the official client's)."""

    def __init__(self, cluster: LocalCluster, namespace: str, name: str) -> None:
        self.values: list[int] = []
        self._watch = watch.Watch()
        self._apps = client.AppsV1Api(cluster.api)
        self._args = (namespace, f"metadata.name={name}")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        namespace, selector = self._args
        for _ in range(100):  # bounded: each stream lasts up to 60 s
            try:
                for event in self._watch.stream(self._apps.list_namespaced_deployment,
                                                namespace, field_selector=selector,
                                                timeout_seconds=60):
                    count = int(event["object"].spec.replicas or 0)
                    if not self.values or self.values[-1] != count:
                        self.values.append(count)
            except Exception:
                if self._watch._stop:
                    return
                time.sleep(0.5)
            if self._watch._stop:
                return

    def stop(self) -> list[int]:
        self._watch.stop()
        self._thread.join(70)
        return self.values


def test_restart_mid_scale_down_resumes_without_flapping(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter, local_cluster: LocalCluster) -> None:
    exporter.set_load("calm", "gpu", 300, namespace=namespace)
    history = ReplicaHistory(local_cluster, namespace, "calm-gpu")
    # A pool's scale-down window is one cold start (at least two intervals), capped by the
    # spec's window: a 12 s cold start gives the GPU pool the whole 12 s to restart within.
    admin.create(TTSSERVICES, namespace, tts(
        "calm", prometheus.url, pools={"gpu": {**GPU, "coldStartSeconds": 12}, "cpu": CPU},
        scaling={"scaleDownStabilizationSeconds": 12}))
    # The hold shows only in a no-change reason, which status carries at its refresh
    # (every fourth tick by default): this test reads every tick's.
    first = start_operator(namespace, extra_args=["--status-refresh-ticks=1"])
    wait_for("gpu up", lambda: (replicas(admin, namespace, "calm-gpu") or 0) >= 3, timeout=40)
    exporter.set_load("calm", "gpu", 5, namespace=namespace)
    # Mid-transition: demand has dropped, the scale-down window still holds the peak.
    wait_for("the stabilisation hold", lambda: "holding for" in status_of(
        admin, namespace, "calm").get("lastDecision", {}).get("reason", ""), timeout=30)
    peak = replicas(admin, namespace, "calm-gpu")
    first.stop()
    assert replicas(admin, namespace, "calm-gpu") == peak
    memory = status_of(admin, namespace, "calm")["engine"]["memory"]
    assert memory["samples"] and memory["sizedFor"] > 0  # what the next operator resumes

    seen = status_of(admin, namespace, "calm")["lastDecision"]["time"]
    start_operator(namespace)  # a new process: nothing in memory but what status holds
    wait_for("a tick by the new operator", lambda: status_of(admin, namespace, "calm")
             ["lastDecision"]["time"] != seen, timeout=20)
    # Without the persisted memory the new operator would size for the low demand at
    # once; with it, the peak is still held inside the window.
    assert replicas(admin, namespace, "calm-gpu") == peak
    wait_for("cpu takes over", lambda: replicas(admin, namespace, "calm-gpu") == 0, timeout=45)
    values = history.stop()
    top = values.index(max(values))
    assert values[top:] == sorted(values[top:], reverse=True), values  # no flap back up


def test_prometheus_outage_holds_replicas_and_sets_the_condition(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter) -> None:
    start_operator(namespace)
    exporter.set_load("dark", "gpu", 300, namespace=namespace)
    admin.create(TTSSERVICES, namespace, tts("dark", prometheus.url))
    held = wait_for("gpu up", lambda: (replicas(admin, namespace, "dark-gpu") or 0) >= 3
                    and replicas(admin, namespace, "dark-gpu"), timeout=40)
    cpu = replicas(admin, namespace, "dark-cpu")
    assert not events(admin, namespace, "dark", "MetricsUnavailable")  # none while it answers
    prometheus.stop()
    try:
        def metrics_condition() -> dict[str, Any] | None:
            cond = condition(admin, namespace, "dark", "MetricsAvailable")
            return cond if cond and cond["status"] == "False" else None

        cond = wait_for("MetricsAvailable=False", metrics_condition, timeout=20)
        assert "replicas held" in cond["message"]
        event = wait_for("MetricsUnavailable event",
                         lambda: events(admin, namespace, "dark", "MetricsUnavailable"))
        assert event[0]["type"] == "Warning"
        ticks = set()
        for _ in range(40):  # bounded: a few ticks of the outage
            status = status_of(admin, namespace, "dark")
            ticks.add(status["lastDecision"]["time"])
            assert replicas(admin, namespace, "dark-gpu") == held
            assert replicas(admin, namespace, "dark-cpu") == cpu
            if len(ticks) >= 3:
                break
            wait_for("next tick", lambda s=status: status_of(admin, namespace, "dark")
                     ["lastDecision"]["time"] != s["lastDecision"]["time"], timeout=10)
        assert len(ticks) >= 3
        assert "metrics unavailable" in status_of(admin, namespace, "dark")["lastDecision"][
            "reason"]
    finally:
        prometheus.start()
    wait_for("MetricsAvailable again", lambda: (condition(
        admin, namespace, "dark", "MetricsAvailable") or {}).get("status") == "True",
        timeout=30)


@pytest.fixture()
def peering(admin: PykubeCluster, namespace: str) -> Iterator[str]:
    """The namespaced KopfPeering the chart creates with peering.enabled and
    watch.namespaces (its CRD came with `helm install`)."""
    admin.create(KOPF_PEERINGS, namespace, {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering",
                                            "metadata": {"name": "elastic-tts"}})
    yield "elastic-tts"


def acting(admin: PykubeCluster, namespace: str, name: str, after: float) -> bool:
    """Whether some operator ticked this service after `after` (epoch seconds)."""
    from elastic_tts.reconcile.observe import parse_time
    stamp = parse_time(status_of(admin, namespace, name).get("lastDecision", {}).get("time"))
    return stamp is not None and stamp > after


def test_two_peered_operators_act_one_at_a_time_and_the_standby_takes_over(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, peering: str, installed: Any) -> None:
    active = start_operator(namespace, standalone=False, peering=peering)
    standby = start_operator(namespace, standalone=False, peering=peering)
    admin.create(TTSSERVICES, namespace, tts("ha", prometheus.url))
    wait_for("a tick", lambda: acting(admin, namespace, "ha", 0), timeout=30)
    record = (admin.get(KOPF_PEERINGS, namespace, peering) or {}).get("status") or {}
    assert len(record) == 2, record  # both announced themselves, with distinct priorities
    assert len({peer["priority"] for peer in record.values()}) == 2, record
    # kopf starts every operator paused; only the senior one resumed.
    assert "Resuming operations after the pause" in active.log()
    assert "Resuming operations after the pause" not in standby.log()
    assert "Possibly conflicting operators" not in active.log() + standby.log()

    killed = time.time()
    active.kill()  # SIGKILL: no goodbye, its peering record stays until it expires
    wait_for("the standby acting", lambda: acting(admin, namespace, "ha", killed + 1),
             timeout=PEERING_LIFETIME + 30, every=0.5)
    took = time.time() - killed
    print(f"standby took over {took:.1f} s after SIGKILL of the active operator")
    assert took <= PEERING_LIFETIME + 15, f"takeover took {took:.0f} s"
    assert "Resuming operations after the pause" in standby.log()
