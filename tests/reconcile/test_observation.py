"""The observe step feeds the engine every signal the LoadSource port returns: the burst
rate, the offered requests, the workers' backlog and the share they refuse. Against
in-memory ports with the real tick and engine, so the backlog, refusal-calibration and
panic stages run from a tick as they do in the simulator, and the inputs of each
decision are in status (status.engine.observation)."""

from __future__ import annotations

import pytest

from elastic_tts.policy.sizing import STEP_DOWN, model_utilisation
from elastic_tts.reconcile.kinds import TTSSERVICES
from elastic_tts.reconcile.tick import Ticker, TickSettings
from elastic_tts_dev.specs import CPU, GPU, tts
from tests.reconcile.memory import MemoryCluster, StaticLoad
from tests.reconcile.test_one_writer import NAME, NS, T0, Operator, ready_pods

UTILISATION = 0.7  # the spec's default targetUtilization
GPU_SLACK = 5.0 / 1.0 - 1.0  # a 5 s SLO over 1 s per 100 characters: 4 service times


def service(load: StaticLoad, settings: TickSettings | None = None
            ) -> tuple[MemoryCluster, Operator]:
    """One GPU and one CPU replica Ready (the CPU pool is kept out of mixes: 5 s per 100
    characters leaves no queue within the 5 s SLO)."""
    cluster = MemoryCluster()
    resource = tts(NAME, "http://prometheus:9090", pools={"gpu": GPU, "cpu": CPU})
    resource["metadata"].update(namespace=NS, generation=1)
    cluster.create(TTSSERVICES, NS, resource)
    operator = Operator(cluster, load)
    if settings is not None:
        operator.ticker = Ticker(cluster, load, settings)
    operator.converge()
    ready_pods(cluster, "gpu", 1)
    ready_pods(cluster, "cpu", 1)
    return cluster, operator


def test_the_tick_asks_for_every_window_and_records_what_the_engine_saw() -> None:
    load = StaticLoad({"gpu": 60.0})
    load.windows["30s"] = {"gpu": 90.0}
    load.refusals["gpu"] = 0.15  # of 0.6 offered requests/s
    load.backlog["gpu"] = 250.0
    _, operator = service(load)
    result = operator.tick(T0)
    assert load.asked[-1].windows == ("30s", "1m", "5m")  # burst, short, long
    assert result.status["engine"]["observation"] == {
        "shortRate": 60.0, "longRate": 60.0, "burstRate": 90.0, "requestsRate": 0.6,
        "backlogCharacters": 250.0, "refusedShare": 0.25}


def test_without_a_burst_window_there_is_no_burst_rate() -> None:
    load = StaticLoad({"gpu": 60.0})
    _, operator = service(load, TickSettings(burst_window=None))
    result = operator.tick(T0)
    assert load.asked[-1].windows == ("1m", "5m")
    assert "burstRate" not in result.status["engine"]["observation"]


def test_workers_without_admission_series_leave_those_stages_off() -> None:
    _, operator = service(StaticLoad({"gpu": 60.0}))
    result = operator.tick(T0)
    observed = result.status["engine"]["observation"]
    assert "refusedShare" not in observed and "backlogCharacters" not in observed
    assert result.decision is not None
    assert result.decision.demand == pytest.approx(60.0 / UTILISATION)
    assert "refuse" not in result.decision.reason and "backlog" not in result.decision.reason


def test_a_backlog_is_demand_drained_within_the_slo() -> None:
    load = StaticLoad({"gpu": 60.0})
    load.backlog["gpu"] = 1100.0
    _, operator = service(load)
    result = operator.tick(T0)
    assert result.decision is not None
    # Beyond one 100-character request per Ready slot (two), 900 characters queue, to be
    # drained within a typical request's 5 s SLO: 180 characters/s more.
    assert result.decision.demand == pytest.approx((60.0 + 900 / 5.0) / UTILISATION)
    assert "backlog and refusals 180 chars/s" in result.decision.reason
    assert result.decision.replicas["gpu"] == 4  # 343 wanted, the pool's ceiling is 4


def test_refusals_lower_the_utilisation_sized_for() -> None:
    # 30 chars/s is about what the Ready GPU replica serves at the start utilisation, so
    # the load does not run ahead of it and the refusals measure the utilisation.
    load = StaticLoad({"gpu": 30.0})
    load.refusals["gpu"] = 0.3  # one refusal per offered request
    _, operator = service(load)
    result = operator.tick(T0)
    assert result.decision is not None
    # It starts from the queueing estimate and takes one bounded calibration step down,
    # since every request is refused once where 10 % is the target (a drift: before the
    # burstiness is known a window counts as one draw, and one is not sure evidence).
    start = model_utilisation(GPU_SLACK)
    assert start < UTILISATION
    learned = result.decision.memory.utilisation
    assert start * STEP_DOWN <= learned < start
    assert result.decision.demand == pytest.approx(30.0 / learned)
    assert f"sizing for {learned:.0%} utilisation: workers refuse" in result.decision.reason


def test_a_burst_above_twice_the_ready_capacity_panics() -> None:
    load = StaticLoad({"gpu": 60.0})
    load.windows["30s"] = {"gpu": 400.0}  # asks for 571 where 100 are Ready
    _, operator = service(load)
    result = operator.tick(T0)
    assert result.decision is not None
    assert "panic" in result.decision.reason
    assert result.decision.memory.panic_until is not None
    # The next tick, the burst gone, still scales nothing down while the panic lasts.
    load.windows.clear()
    calm = operator.tick(T0 + 1)
    assert calm.decision is not None and "panic" in calm.decision.reason
    assert calm.decision.replicas["gpu"] >= result.decision.replicas["gpu"]
