"""Restarts and outages: an operator restarted mid scale-down resumes from the memory it
left in status (no flapping), and a Prometheus outage holds replicas and says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import TTSSERVICES
from elastic_tts_dev.emulator import EmulatorThread
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import tts
from tests.operator.cluster import FakeKubelet, OperatorThread, wait_for
from tests.operator.test_operator_lifecycle import condition, events, replicas


@pytest.fixture()
def operator(api_server: Any, namespace: str, kubelet: FakeKubelet,
             prometheus: Prometheus) -> Iterator[OperatorThread]:
    running = OperatorThread(namespace).start()
    yield running
    running.stop()


def status_of(cluster: PykubeCluster, ns: str, name: str) -> dict[str, Any]:
    return dict((cluster.get(TTSSERVICES, ns, name) or {}).get("status") or {})


def gpu_history(api_server: EmulatorThread, ns: str, name: str) -> list[int]:
    assert api_server.server is not None
    history = api_server.server.objects["apps/v1/deployments", ns, name].history
    counts = [int(v.raw["spec"].get("replicas") or 0) for v in history if v is not None]
    return [c for i, c in enumerate(counts) if i == 0 or c != counts[i - 1]]


def test_restart_mid_scale_down_resumes_without_flapping(
        api_server: EmulatorThread, cluster: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter, kubelet: FakeKubelet) -> None:
    exporter.set_load("calm", "gpu", 300)
    cluster.create(TTSSERVICES, namespace, tts(
        "calm", prometheus.url, scaling={"scaleDownStabilizationSeconds": 12}))
    first = OperatorThread(namespace).start()
    try:
        wait_for("gpu up", lambda: (replicas(cluster, namespace, "calm-gpu") or 0) >= 3,
                 timeout=40)
        exporter.set_load("calm", "gpu", 5)
        # Mid-transition: demand has dropped, the scale-down window still holds the peak.
        wait_for("the stabilisation hold", lambda: "holding for" in status_of(
            cluster, namespace, "calm").get("lastDecision", {}).get("reason", ""), timeout=30)
        # Read the peak only now: while the short rate window still filled up, the count
        # could go on rising after first reaching 3, and the hold freezes it.
        peak = replicas(cluster, namespace, "calm-gpu")
    finally:
        first.stop()
    assert replicas(cluster, namespace, "calm-gpu") == peak
    memory = status_of(cluster, namespace, "calm")["engine"]["memory"]
    assert memory["samples"] and memory["sizedFor"] > 0  # what the next operator resumes

    second = OperatorThread(namespace).start()  # a fresh process state: nothing in memory
    try:
        seen = status_of(cluster, namespace, "calm")["lastDecision"]["time"]
        wait_for("a tick by the new operator", lambda: status_of(cluster, namespace, "calm")
                 ["lastDecision"]["time"] != seen, timeout=15)
        # Without the persisted memory the new operator would size for the low demand at
        # once; with it, the peak is still held inside the window.
        assert replicas(cluster, namespace, "calm-gpu") == peak
        wait_for("cpu takes over", lambda: replicas(cluster, namespace, "calm-gpu") == 0,
                 timeout=45)
    finally:
        second.stop()
    history = gpu_history(api_server, namespace, "calm-gpu")
    top = history.index(max(history))
    assert history[top:] == sorted(history[top:], reverse=True), history  # no flap back up


def test_prometheus_outage_holds_replicas_and_sets_the_condition(
        operator: OperatorThread, cluster: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter) -> None:
    exporter.set_load("dark", "gpu", 300)
    cluster.create(TTSSERVICES, namespace, tts("dark", prometheus.url))
    held = wait_for("gpu up", lambda: (replicas(cluster, namespace, "dark-gpu") or 0) >= 3
                    and replicas(cluster, namespace, "dark-gpu"), timeout=40)
    cpu = replicas(cluster, namespace, "dark-cpu")
    prometheus.stop()
    try:
        def metrics_condition() -> dict[str, Any] | None:
            cond = condition(cluster, namespace, "dark", "MetricsAvailable")
            return cond if cond and cond["status"] == "False" else None

        cond = wait_for("MetricsAvailable=False", metrics_condition, timeout=20)
        assert "replicas held" in cond["message"]
        event = wait_for("MetricsUnavailable event",
                         lambda: events(cluster, namespace, "dark", "MetricsUnavailable"))
        assert event[0]["type"] == "Warning"
        ticks = set()
        for _ in range(40):  # bounded: a few ticks of the outage
            status = status_of(cluster, namespace, "dark")
            ticks.add(status["lastDecision"]["time"])
            assert replicas(cluster, namespace, "dark-gpu") == held
            assert replicas(cluster, namespace, "dark-cpu") == cpu
            if len(ticks) >= 3:
                break
            wait_for("next tick", lambda s=status: status_of(cluster, namespace, "dark")
                     ["lastDecision"]["time"] != s["lastDecision"]["time"], timeout=10)
        assert len(ticks) >= 3
        assert "metrics unavailable" in status_of(cluster, namespace, "dark")["lastDecision"][
            "reason"]
    finally:
        prometheus.start()
    wait_for("MetricsAvailable again", lambda: (condition(
        cluster, namespace, "dark", "MetricsAvailable") or {}).get("status") == "True",
        timeout=30)
