"""Status is written when what it shows changes, and its load figures every few ticks.

`status.due` decides per tick; the ticker applies it with `status_refresh_ticks`. At 500
services a status patch per tick (and its watch event) was most of what the API server
served, so a tick whose status differs only in figures that move with the load waits.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from elastic_tts.reconcile.kinds import TTSSERVICES
from elastic_tts.reconcile.status import compared, due, newest, timestamp
from elastic_tts.reconcile.tick import ServiceRef, Ticker, TickResult, TickSettings
from elastic_tts_dev.specs import CPU, GPU, tts
from tests.reconcile.memory import MemoryCluster, StaticLoad
from tests.reconcile.test_one_writer import NAME, NS, T0, no_adopt, ready_pods

REFRESH = 52.5  # four 15 s ticks, less half a tick


def written(at: float) -> dict[str, Any]:
    """A status as a tick writes it, at `at`."""
    return {
        "mode": "auto", "window": None, "costPerHour": 2.5,
        "replicas": {"gpu": 1, "spot": 0, "cpu": 2},
        "load": {"requestsPerSecond": 0.6, "charactersPerSecond": 60.0, "demand": 85.7},
        "pools": {"gpu": {"desired": 1, "current": 1, "ready": 1, "pending": 0,
                          "pendingSeconds": 0.0, "requestsPerSecond": 0.6,
                          "charactersPerSecond": 60.0}},
        "lastDecision": {"time": timestamp(at), "replicas": {"gpu": 1, "cpu": 2},
                         "reason": "demand 85.7 chars/s at 70% utilisation: gpu 1, cpu 2"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "AllReady",
                        "message": "every pool", "lastTransitionTime": timestamp(T0)}],
        "engine": {"memory": {"samples": [[at, 85.7]], "utilisation": 0.62, "targets": {"gpu": 1},
                              "backoff": {}, "bursts": [[at, 1.1]]},
                   "observation": {"shortRate": 60.0, "longRate": 60.0},
                   "interruptedPods": []},
    }


def changed(at: float, path: str, value: Any) -> dict[str, Any]:
    status = copy.deepcopy(written(at))
    *parents, leaf = path.split(".")
    node = status
    for key in parents:
        node = node[key]
    node[leaf] = value
    return status


FIGURES = [  # each moves with the load alone: written at the refresh, not before
    ("load.charactersPerSecond", 75.0),
    ("load.demand", 107.1),
    ("pools.gpu.pendingSeconds", 12.5),
    ("pools.gpu.charactersPerSecond", 75.0),
    ("engine.observation", {"shortRate": 75.0, "longRate": 61.0}),
    ("engine.memory.samples", [[T0, 85.7], [T0 + 15, 107.1]]),
    ("engine.memory.utilisation", 0.64),
    ("engine.memory.bursts", [[T0, 1.1], [T0 + 15, 1.4]]),
    ("engine.memory.spotExposure", {"spot": [T0 + 15, 3600.0, 0.0]}),
    ("lastDecision.reason", "demand 107.1 chars/s at 64% utilisation: gpu 1, cpu 2"),
    ("lastDecision.reason", "no change (gpu 1, cpu 2): demand 80 chars/s, holding for 86"),
]

FACTS = [  # each is what the operator did or saw happen: written at once
    ("replicas.cpu", 3),
    ("lastDecision.replicas", {"gpu": 1, "cpu": 3}),
    ("pools.gpu.pending", 1),
    ("pools.gpu.ready", 0),
    ("mode", "scheduled"),
    ("window", "night"),
    ("conditions", [{"type": "Ready", "status": "False", "reason": "Starting",
                     "message": "gpu 0/1 ready", "lastTransitionTime": timestamp(T0 + 15)}]),
    ("engine.interruptedPods", ["uid-1"]),
    ("engine.memory.backoff", {"spot": {"until": T0 + 300, "failures": 1, "cause": "pending"}}),
    ("engine.memory.targets", {"gpu": 2}),
    ("routeWeights", {"gpu": 714, "cpu": 286}),
    ("observedGeneration", 2),
]


@pytest.mark.parametrize(("path", "value"), FIGURES, ids=[f"{p}={v}"[:60] for p, v in FIGURES])
def test_figures_alone_wait_for_the_refresh(path: str, value: Any) -> None:
    old = written(T0)
    new = changed(T0 + 15, path, value)
    assert not due(old, new, T0 + 15, REFRESH)
    assert not due(old, new, T0 + 45, REFRESH)
    assert due(old, new, T0 + 60, REFRESH)


@pytest.mark.parametrize(("path", "value"), FACTS, ids=[p for p, _ in FACTS])
def test_what_the_operator_did_is_written_at_once(path: str, value: Any) -> None:
    assert due(written(T0), changed(T0 + 15, path, value), T0 + 15, REFRESH)


def test_a_null_the_server_dropped_is_no_change() -> None:
    """A merge patch's null deletes its key, so the stored status lacks what the new one
    holds as null (no window, no transition): that is no change."""
    new = changed(T0 + 15, "window", None)
    new["engine"]["memory"]["transition"] = None
    old = written(T0)
    del old["window"]
    assert not due(old, new, T0 + 15, REFRESH)


def test_refresh_zero_writes_every_tick_and_a_first_status_is_always_due() -> None:
    assert due(written(T0), written(T0 + 15), T0 + 15, 0.0)
    assert due({}, written(T0), T0, REFRESH)
    assert due(changed(T0, "lastDecision.time", "not a time"), written(T0 + 15), T0 + 15,
               REFRESH)


@pytest.mark.parametrize(("path", "value"), FIGURES + FACTS,
                         ids=[f"{p}={v}"[:60] for p, v in FIGURES + FACTS])
def test_the_compared_view_of_a_write_decides_as_the_whole_status_does(
        path: str, value: Any) -> None:
    """The daemon keeps `compared(status)` of its last write, not the status: every
    figure and fact is then due, or not, exactly as against the whole status, and the
    newest of body and write is the same one."""
    old, new = written(T0), changed(T0 + 15, path, value)
    for now in (T0 + 15, T0 + 45, T0 + 60):
        assert due(compared(old), new, now, REFRESH) == due(old, new, now, REFRESH)
        assert due(compared(compared(old)), new, now, REFRESH) == due(old, new, now, REFRESH)
    lagging = written(T0 - 15)
    assert newest(lagging, compared(old)) == compared(old)
    assert newest(new, compared(old)) is new


def test_the_compared_view_keeps_no_rolling_memory_or_figures() -> None:
    """What the memo holds per service: no burst readings, samples or load figures."""
    view = compared(written(T0))
    assert view["engine"]["memory"] == {"targets": {"gpu": 1}, "backoff": {}}
    assert "load" not in view and "observation" not in view["engine"]
    assert view["lastDecision"] == {"replicas": {"gpu": 1, "cpu": 2}, "time": timestamp(T0)}


def status_of(cluster: MemoryCluster) -> dict[str, Any]:
    return dict((cluster.get(TTSSERVICES, NS, NAME) or {}).get("status") or {})


def test_a_steady_service_writes_status_every_fourth_tick_and_at_once_on_a_change() -> None:
    """The ticker, on in-memory ports: once its pods are Ready, a service under steady
    load writes status every fourth tick; a jump in the load that changes the replicas
    is written at the tick that decides it."""
    cluster, load = MemoryCluster(), StaticLoad({"gpu": 60.0, "cpu": 20.0})
    resource = tts(NAME, "http://prometheus:9090", pools={"gpu": GPU, "cpu": CPU})
    resource["metadata"].update(namespace=NS, generation=1)
    resource["spec"]["scaling"]["intervalSeconds"] = 15  # the default; the tests' is 1 s
    cluster.create(TTSSERVICES, NS, resource)
    ticker = Ticker(cluster, load, TickSettings(status_refresh_ticks=4, watch_children=False))
    memory = None

    def tick(index: int) -> TickResult:
        nonlocal memory
        body = cluster.get(TTSSERVICES, NS, NAME) or {}
        ref = ServiceRef(NAME, NS, 1)
        result = ticker.tick(ref, body["spec"], body.get("status") or {}, T0 + 15 * index,
                             no_adopt, memory)
        memory = result.decision.memory if result.decision else None
        if result.status_due:
            ticker.write_status(ref, body.get("status") or {}, result.status)
        return result

    first = tick(0)
    assert first.status_due and first.decision is not None
    for pool, count in first.decision.replicas.items():
        ready_pods(cluster, pool, count)
    assert tick(1).status_due  # the pods it asked for are Ready: a condition changed
    assert tick(2).status_due  # the Deployments it created have their replicas
    assert [tick(i).status_due for i in range(3, 8)] == [False, False, False, True, False]
    load.characters = {"gpu": 600.0, "cpu": 200.0}  # ten times the load
    jumped = tick(8)
    assert jumped.status_due and jumped.changes
    assert status_of(cluster)["lastDecision"]["replicas"] == jumped.decision.replicas


def test_a_lagging_body_is_compared_with_the_callers_own_last_write() -> None:
    """At 500 services the status kopf hands a tick lagged its writes by more than a tick,
    so its age always passed the refresh: the newer of it and the caller's own last
    write is what a tick compares with."""
    lagging, mine = written(T0 - 60), written(T0)
    assert newest(lagging, mine) is mine and newest(mine, None) is mine
    assert newest(None, None) == {}
    assert due(lagging, written(T0 + 15), T0 + 15, REFRESH)
    assert not due(newest(lagging, mine), written(T0 + 15), T0 + 15, REFRESH)
