"""Schedule windows through the real tick (the local cluster's API server, a real
Prometheus), with time passed in: a shutdown window takes every pool to zero, and a peak
window is prewarmed ahead of its start by the GPU cold start. The tick runs in process
under the chart's ServiceAccount token, so the API server applies the chart's RBAC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import kopf
import pykube
import pytest

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.adapters.prometheus import PrometheusLoadSource
from elastic_tts.policy import parse_spec
from elastic_tts.reconcile.children import ensure_children
from elastic_tts.reconcile.kinds import TTSSERVICES
from elastic_tts.reconcile.render import render_children
from elastic_tts.reconcile.tick import ServiceRef, Ticker
from elastic_tts_dev.prometheus import Prometheus
from elastic_tts_dev.specs import CPU, GPU, tts
from tests.cluster.fixtures import Installation
from tests.operator.cluster import TEST_SETTINGS
from tests.operator.test_operator_lifecycle import replicas


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def scheduled(prometheus: Prometheus) -> dict[str, Any]:
    return tts("clock", prometheus.url, pools={"gpu": {**GPU, "coldStartSeconds": 120},
                                               "cpu": CPU},
               schedule={"timezone": "Asia/Shanghai", "prewarm": True, "windows": [
                   {"name": "night", "start": "0 1 * * *", "duration": "5h",
                    "mode": "shutdown"},
                   {"name": "peak", "start": "0 9 * * 1-5", "duration": "8h",
                    "pools": {"gpu": {"minReplicas": 2}}},
               ]})


def test_shutdown_window_reaches_zero_and_peak_is_prewarmed(
        installed: Installation, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, request: pytest.FixtureRequest) -> None:
    cluster = PykubeCluster(pykube.HTTPClient(
        pykube.KubeConfig.from_file(str(installed.kubeconfig)), timeout=15.0))
    owner = admin.create(TTSSERVICES, namespace, scheduled(prometheus))
    spec = parse_spec(owner)
    ensure_children(cluster, namespace, "clock", render_children("clock", spec),
                    lambda objs: kopf.adopt(objs, owner=owner))
    ticker = Ticker(cluster, PrometheusLoadSource(), TEST_SETTINGS)
    request.addfinalizer(ticker.close)
    ref = ServiceRef("clock", namespace, 1)

    def tick(now: float) -> Any:
        # The body as kopf would hand it over from its watch (the test reads it as admin).
        body = admin.get(TTSSERVICES, namespace, "clock") or {}
        result = ticker.tick(ref, body["spec"], body.get("status") or {}, now,
                             lambda objs: kopf.adopt(objs, owner=body))
        ticker.write_status(ref, body.get("status") or {}, result.status)
        return result

    daytime = tick(at("2026-11-23T07:00:00+08:00"))  # Monday, between the windows
    assert replicas(admin, namespace, "clock-cpu") == 1  # cpu floor
    assert daytime.decision.window is None

    night = tick(at("2026-11-23T02:00:00+08:00"))
    assert night.decision.mode == "shutdown"
    assert replicas(admin, namespace, "clock-cpu") == 0
    assert replicas(admin, namespace, "clock-gpu") == 0
    assert [e.reason for e in night.events if e.reason == "ScheduleWindowOpened"]
    assert "night" in next(e.message for e in night.events
                           if e.reason == "ScheduleWindowOpened")
    assert (admin.get(TTSSERVICES, namespace, "clock") or {})["status"]["mode"] == "shutdown"

    early = tick(at("2026-11-23T08:58:30+08:00"))  # 90 s before peak, GPU cold start 120 s
    assert replicas(admin, namespace, "clock-gpu") == 2
    assert "prewarming gpu" in early.decision.reason
