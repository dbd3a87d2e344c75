"""Faults, injected into the running loop under load, and recovered from.

Each scenario runs its own TTSService with steady load from the generator; the fault is
injected once the loop has converged, and every scenario ends with nothing lost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest
import requests

from elastic_tts_dev.prometheus import Prometheus
from tests.e2e.apifaults import FaultProxy
from tests.e2e.checks import (
    capacity_drops_below_demand,
    condition_is,
    converged,
    deployment_replicas,
    wait_converged,
    wait_steady_under,
)
from tests.e2e.conftest import LoopFactory
from tests.e2e.loadgen import LoadGenerator, steps
from tests.e2e.loop import Loop
from tests.e2e.report import REPORT, ScenarioFigures
from tests.e2e.specs import POOLS, SPEED, e2e_service
from tests.operator.cluster import wait_for

# Each scenario runs a loop for one to three minutes on two shared cores.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

CHARS = 20


@pytest.fixture
def loads() -> Iterator[list[LoadGenerator]]:
    started: list[LoadGenerator] = []
    yield started
    for load in started:
        load.stop()


def start_load(loop: Loop, loads: list[LoadGenerator], rate: float,
               seconds: float = 600) -> LoadGenerator:
    load = LoadGenerator(loop.endpoints).start(steps([(seconds, rate)], CHARS))
    loads.append(load)
    return load


def finish(figures: ScenarioFigures, loop: Loop, load: LoadGenerator, origin: float) -> None:
    stats = load.finish()
    REPORT.add_load(figures, stats)
    REPORT.add_scaling(figures, loop.observer.scale_actions, origin)
    assert stats.sent > 0
    assert not stats.lost, stats.lost[:5]


def test_prometheus_killed_for_a_while(make_loop: LoopFactory, e2e_prometheus: Prometheus,
                                       loads: list[LoadGenerator]) -> None:
    figures = REPORT.scenario("Prometheus killed")
    loop = make_loop(lambda nodes: e2e_service("promkill", e2e_prometheus.url, nodes))
    wait_converged(loop, "the cpu floor")
    origin = time.time()
    load = start_load(loop, loads, 45.0)
    before = wait_steady_under(loop, 45.0)
    e2e_prometheus.kill()
    killed = time.time()
    wait_for("MetricsAvailable=False", lambda: condition_is(loop, "MetricsAvailable", "False"),
             20)
    noticed = time.time() - killed
    held = []
    for _ in range(6):  # replicas held through the outage
        held.append(deployment_replicas(loop))
        time.sleep(1.0)
    e2e_prometheus.start()
    outage = time.time() - killed
    wait_for("MetricsAvailable=True", lambda: condition_is(loop, "MetricsAvailable", "True"),
             30)
    # The load never changed: after recovery the replicas stay where they were.
    for _ in range(8):
        held.append(deployment_replicas(loop))
        time.sleep(1.0)
    after = wait_steady_under(loop, 45.0)
    finish(figures, loop, load, origin)
    assert all(h == before for h in held), (before, held)
    assert after == before, (before, after)
    assert not capacity_drops_below_demand(loop)
    REPORT.fault("Prometheus killed", f"SIGKILL for {outage:.0f}s under 45 chars/s",
                 f"MetricsAvailable=False after {noticed:.1f}s, replicas held at {before}, "
                 f"back to True after restart; steady again at {after}")


def test_operator_killed_mid_transition(make_loop: LoopFactory, e2e_prometheus: Prometheus,
                                        loads: list[LoadGenerator]) -> None:
    figures = REPORT.scenario("operator killed mid-transition")
    loop = make_loop(lambda nodes: e2e_service("opkill", e2e_prometheus.url, nodes))
    wait_converged(loop, "the cpu floor")
    origin = time.time()
    # Up, down, up again: three transitions to be caught in the middle of.
    load = LoadGenerator(loop.endpoints).start(
        steps([(30, 100.0), (35, 15.0), (40, 100.0)], CHARS))
    loads.append(load)
    kills = []
    for _ in range(3):
        seen = len(loop.observer.scale_actions)
        wait_for("a scale action to interrupt",
                 lambda n=seen: len(loop.observer.scale_actions) > n, 60, every=0.1)
        action = loop.observer.scale_actions[-1]
        loop.operator.kill()  # the new capacity is not Ready yet: mid-transition
        kills.append(f"{action.pool} {action.before}->{action.after}")
        time.sleep(1.5)
        loop.operator.start()
    stats = load.wait(150)
    final = wait_converged(loop, "convergence after the kills", 60)
    REPORT.add_load(figures, stats)
    REPORT.add_scaling(figures, loop.observer.scale_actions, origin)
    assert not stats.lost, stats.lost[:5]
    drops = capacity_drops_below_demand(loop)
    assert not drops, drops
    REPORT.fault("operator killed", f"SIGKILL x{len(kills)} right after scale actions "
                 f"({', '.join(kills)}), restarted 1.5s later",
                 f"converged to {final}; Ready capacity never dropped below demand")


def back_on_spot(loop: Loop) -> dict[str, int] | None:
    """Converged with spot at its ceiling and on-demand gpu only for what cpu and spot at
    their ceilings cannot carry of the demand the decision was sized for (at 100 chars/s
    the held short-window peak can exceed their 160 chars/s: then one gpu is right)."""
    steady = converged(loop)
    memory = (loop.status().get("engine") or {}).get("memory") or {}
    if steady is None or "sizedFor" not in memory:
        return None
    ceilings = sum(POOLS[p]["maxReplicas"] * SPEED for p in ("cpu", "spot"))
    beyond = max(0.0, float(memory["sizedFor"]) - ceilings)
    wanted_gpu = math.ceil(beyond / SPEED - 1e-9)
    return steady if (steady.get("spot") == POOLS["spot"]["maxReplicas"]
                      and steady.get("gpu", 0) == wanted_gpu < 2) else None


def test_spot_pending_then_interrupted(make_loop: LoopFactory, e2e_prometheus: Prometheus,
                                       loads: list[LoadGenerator]) -> None:
    figures = REPORT.scenario("spot pending / interrupted")
    # No spot node when load arrives: the scheduler leaves spot pods Pending.
    loop = make_loop(lambda nodes: e2e_service("spot", e2e_prometheus.url, nodes),
                     nodes={"cpu": 1, "spot": 0, "gpu": 1})
    wait_converged(loop, "the cpu floor")
    origin = time.time()
    load = start_load(loop, loads, 100.0)
    pending = wait_for("spot pods left Pending by the scheduler", lambda: [
        p for p in loop.pods("spot") if any(
            c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
            for c in p["status"].get("conditions") or [])], 60)
    wait_for("SpotFallback", lambda: condition_is(loop, "SpotFallback", "True"), 60)
    wait_for("on-demand covering", lambda: loop.ready_counts().get("gpu"), 30)
    added = loop.add_nodes("spot")  # the cloud has spot capacity again
    wait_for("back to spot", lambda: loop.ready_counts().get("spot") == 2, 90)
    steady = wait_for("spot steady, on-demand let go", lambda: back_on_spot(loop), 60)
    REPORT.fault("spot", f"no spot node as load rose: {len(pending)} spot pods Pending "
                 "(Unschedulable)", "SpotFallback=True, gpu covered; after a spot node "
                 f"came ({added[0]}) and the back-off ended, back on spot: {steady}")
    # Now reclaim the spot node, with no spot capacity for the replacements.
    interrupted = loop.interrupt("spot")
    wait_for("SpotFallback again",
             lambda: condition_is(loop, "SpotFallback", "True"), 30)
    wait_for("on-demand covering again", lambda: loop.ready_counts().get("gpu"), 30)
    time.sleep(3)
    loop.add_nodes("spot")
    wait_for("back to spot again", lambda: loop.ready_counts().get("spot") == 2, 90)
    recovered = wait_for("spot steady again, on-demand let go", lambda: back_on_spot(loop), 60)
    finish(figures, loop, load, origin)
    assert wait_for("SpotFallback cleared",
                    lambda: condition_is(loop, "SpotFallback", "False"), 30)
    assert not capacity_drops_below_demand(loop)
    REPORT.fault("spot", f"the spot node reclaimed with {interrupted} pods (tainted, "
                 "cordoned, evicted, deleted)", f"fallback to gpu, then back on spot: "
                 f"{recovered}")


def test_worker_sigterm_under_load(make_loop: LoopFactory, e2e_prometheus: Prometheus,
                                   loads: list[LoadGenerator]) -> None:
    figures = REPORT.scenario("worker SIGTERM under load")
    loop = make_loop(lambda nodes: e2e_service("sigterm", e2e_prometheus.url, nodes))
    wait_converged(loop, "the cpu floor")
    origin = time.time()
    load = start_load(loop, loads, 80.0)
    wait_steady_under(loop, 80.0)
    victims = []
    for pool in ("cpu", "spot", "cpu"):  # `kubectl delete pod`: preStop, SIGTERM, drain
        pod = loop.delete_ready_pod(pool)
        assert pod is not None, f"no Ready {pool} pod to delete"
        victims.append(pod)
        time.sleep(4)
    exits = wait_for("every deleted pod's worker exited", lambda: all(
        v in loop.kubelet.record.exits for v in victims) and loop.kubelet.record.exits, 90)
    assert all(exits[v] == 0 for v in victims), {v: exits[v] for v in victims}
    wait_converged(loop, "replacements Ready")
    finish(figures, loop, load, origin)
    REPORT.fault("worker SIGTERM", f"{len(victims)} Ready pods deleted under 80 chars/s "
                 "(preStop, then SIGTERM)", "each worker drained and exited 0; no request "
                 "dropped")


def test_api_errors_are_retried(make_loop: LoopFactory, e2e_prometheus: Prometheus,
                                e2e_proxy: FaultProxy,
                                loads: list[LoadGenerator]) -> None:
    figures = REPORT.scenario("API errors injected")
    loop = make_loop(lambda nodes: e2e_service("apierr", e2e_prometheus.url, nodes))
    wait_converged(loop, "the cpu floor")
    origin = time.time()
    gate = e2e_proxy.gate
    gate.add("PATCH", "/deployments/", status=409, times=3)
    gate.add("PATCH", "/deployments/", status=500, times=2)
    gate.add("PATCH", "/ttsservices/apierr/status", status=500, times=3)
    gate.add("GET", "/pods", delay=3.0, times=3)
    gate.add("GET", "/deployments", status=500, times=3)
    load = start_load(loop, loads, 100.0)
    wait_for("every injected fault hit", lambda: gate.pending() == 0, 90)
    final = wait_converged(loop, "convergence despite API errors", 60)
    finish(figures, loop, load, origin)
    assert loop.operator.alive()
    assert sum(final.values()) >= 4, final  # it did scale up for the load
    counted = reconcile_errors(requests.get(loop.operator.metrics_url, timeout=5).text)
    assert counted.get("Conflict", 0) >= 1 and counted.get("ApiError", 0) >= 1, counted
    REPORT.fault("API errors", ", ".join(f"{k} x{v}" for k, v in sorted(gate.hits.items())),
                 f"operator retried ({counted}), never crashed; converged to {final}")


def reconcile_errors(exposition: str) -> dict[str, float]:
    """elastic_tts_reconcile_errors_total by its `kind` label, from /metrics text."""
    counted: dict[str, float] = {}
    for line in exposition.splitlines():
        if line.startswith("elastic_tts_reconcile_errors_total{"):
            labels, _, value = line.rpartition(" ")
            kind = labels.split('kind="', 1)[1].split('"', 1)[0]
            counted[kind] = counted.get(kind, 0.0) + float(value)
    return counted
