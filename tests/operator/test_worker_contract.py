"""What the operator hands the worker, and what it hears back from it.

Down: the rendered Deployment passes the pool's concurrency and throughput, the SLO, the
namespace (downward API) and the probe port, and the worker's own settings loader reads
them as meant. Up: a worker that cannot start its engine says why in its termination
message; the operator surfaces it as the WorkerFailing condition and an EngineFailed
event (the tick in process against the local cluster's API server, under the chart's
ServiceAccount token, as tests/operator/test_schedule_tick.py runs it)."""

from __future__ import annotations

from typing import Any

import kopf
import pykube
import pytest

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.adapters.prometheus import PrometheusLoadSource
from elastic_tts.policy import parse_spec
from elastic_tts.reconcile.children import ensure_children
from elastic_tts.reconcile.kinds import PODS, TTSSERVICES
from elastic_tts.reconcile.observe import worker_problem
from elastic_tts.reconcile.render import render_children, render_deployment
from elastic_tts.reconcile.tick import ServiceRef, Ticker
from elastic_tts_dev.prometheus import Prometheus
from elastic_tts_dev.specs import CPU, GPU, tts
from tests.cluster.fixtures import Installation
from tests.operator.cluster import TEST_SETTINGS
from tts_worker.config import load_settings


def worker_container(spec: dict[str, Any], pool: str) -> dict[str, Any]:
    parsed = parse_spec(spec)
    deployment = render_deployment("reader", parsed, parsed.pools[pool])
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_the_worker_reads_what_the_operator_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tts("reader", "http://prometheus", pools={"gpu": {**GPU, "concurrency": 6,
                                                             "throughput": 250}, "cpu": CPU},
               scaling={"latencySLOSeconds": 2.5})["spec"]
    container = worker_container(spec, "gpu")
    env = {e["name"]: e for e in container["env"]}
    assert env["TTS_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    for item in container["env"]:
        if "value" in item:
            monkeypatch.setenv(item["name"], item["value"])
    monkeypatch.setenv("TTS_NAMESPACE", "prod")  # what the downward API fills in
    settings = load_settings()
    assert (settings.max_concurrency, settings.throughput, settings.latency_slo_seconds) == (
        6, 250.0, 2.5)
    assert (settings.namespace, settings.service, settings.pool) == ("prod", "reader", "gpu")
    probe_port = int(settings.probe_bind.rpartition(":")[2])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == probe_port and ports["http"] == 8080
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "metrics"


def status(**container: Any) -> dict[str, Any]:
    return {"containerStatuses": [{"name": "worker", "ready": False, **container}]}


@pytest.mark.parametrize(("pod_status", "problem"), [
    (status(state={"running": {}}), None),
    ({"containerStatuses": [{"name": "worker", "ready": True, "lastState": {"terminated": {
        "reason": "Error", "message": "old news"}}}]}, None),
    (status(state={"running": {}}, lastState={"terminated": {
        "reason": "Error", "message": "engine modelscope failed to load: TTS_MODEL = 'x'\n"}}),
     "engine modelscope failed to load: TTS_MODEL = 'x'"),
    (status(state={"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}),
     "ImagePullBackOff: no such image"),
    (status(state={"waiting": {"reason": "ContainerCreating"}}), None),
])
def test_what_a_pod_says_about_its_worker(pod_status: dict[str, Any],
                                          problem: str | None) -> None:
    assert worker_problem({"status": pod_status}) == problem


def test_a_worker_that_cannot_start_its_engine_is_surfaced(
        installed: Installation, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, request: pytest.FixtureRequest) -> None:
    cluster = PykubeCluster(pykube.HTTPClient(
        pykube.KubeConfig.from_file(str(installed.kubeconfig)), timeout=15.0))
    owner = admin.create(TTSSERVICES, namespace, tts("broken", prometheus.url))
    spec = parse_spec(owner)
    ensure_children(cluster, namespace, "broken", render_children("broken", spec),
                    lambda objs: kopf.adopt(objs, owner=owner))
    ticker = Ticker(cluster, PrometheusLoadSource(), TEST_SETTINGS)
    request.addfinalizer(ticker.close)
    ref = ServiceRef("broken", namespace, 1)

    def tick(now: float) -> Any:
        # The body as kopf would hand it over from its watch (the test reads it as admin).
        body = admin.get(TTSSERVICES, namespace, "broken") or {}
        result = ticker.tick(ref, body["spec"], body.get("status") or {}, now,
                             lambda objs: kopf.adopt(objs, owner=body))
        ticker.write_status(ref, body.get("status") or {}, result.status)
        return result

    first = tick(1_800_000_000.0)
    assert not [e for e in first.events if e.reason == "EngineFailed"]
    # A crash-looping worker of the cpu pool. kwok would play a healthy kubelet for any
    # pod on its nodes, so this one fits no node (the scheduler leaves it unbound) and
    # the test writes, as a kubelet would, the status a restarted worker leaves.
    why = "engine modelscope failed to load: TTS_MODEL = 'iic/x' is not in this image"
    admin.create(PODS, namespace, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "broken-cpu-1", "labels": {"elastictts.io/service": "broken",
                                                         "elastictts.io/pool": "cpu"}},
        "spec": {"containers": [{"name": "worker", "image": "w"}],
                 "nodeSelector": {"elastictts.io/pool": "no-such-pool"}}})
    admin.patch(PODS, namespace, "broken-cpu-1", {"status": {"phase": "Running", **status(
        state={"waiting": {"reason": "CrashLoopBackOff"}}, restartCount=1,
        lastState={"terminated": {"reason": "Error", "exitCode": 3, "message": why}})}},
        subresource="status")
    failing = tick(1_800_000_015.0)
    events = [e for e in failing.events if e.reason == "EngineFailed"]
    assert len(events) == 1 and events[0].type == "Warning" and why in events[0].message
    conditions = {c["type"]: c for c in
                  (admin.get(TTSSERVICES, namespace, "broken") or {})["status"]["conditions"]}
    assert conditions["WorkerFailing"]["status"] == "True"
    assert conditions["WorkerFailing"]["reason"] == "EngineFailed"
    assert "pool cpu: broken-cpu-1: " + why in conditions["WorkerFailing"]["message"]
    again = tick(1_800_000_030.0)  # still failing: no second event
    assert not [e for e in again.events if e.reason == "EngineFailed"]


def test_steady_conditions_raise_no_events() -> None:
    """Events fire when a condition flips, never on a tick where nothing changed (before
    this, a healthy tick after a healthy tick raised MetricsUnavailable and SpotFallback)."""
    from elastic_tts.reconcile import reasons
    from elastic_tts.reconcile.status import set_condition

    class Steady:
        reason = "steady"
        window = None

    healthy = set_condition(None, reasons.METRICS_AVAILABLE, True, reasons.QUERY_OK, "ok", 0)
    healthy = set_condition(healthy, reasons.SPOT_FALLBACK, False, reasons.SPOT_HEALTHY, "ok",
                            0)
    healthy = set_condition(healthy, reasons.WORKER_FAILING, False, reasons.WORKERS_STARTING,
                            "ok", 0)
    steady = {"conditions": healthy}
    assert Ticker._events(None, steady, steady, Steady(), []) == []  # type: ignore[arg-type]
    down = set_condition(healthy, reasons.METRICS_AVAILABLE, False, reasons.QUERY_FAILED,
                         "Prometheus down", 1)
    events = Ticker._events(None, steady, {"conditions": down}, Steady(), [])  # type: ignore[arg-type]
    assert [e.reason for e in events] == ["MetricsUnavailable"]
