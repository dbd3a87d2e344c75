"""The policies: HPA and KEDA formulas, the oracle as a lower bound, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from elastic_tts.policy import PoolState, parse_spec
from elastic_tts.simulator.cluster import SpotConditions
from elastic_tts.simulator.compare import SpotWeather, compare
from elastic_tts.simulator.defaults import default_spec
from elastic_tts.simulator.engine import RunResult, simulate
from elastic_tts.simulator.policies import HPA, KEDA, ElasticTTS, View, cron_floors
from elastic_tts.simulator.report import summaries
from elastic_tts.simulator.trace import Trace, builtin_day, make_trace, scale, speedup

from .helpers import START, pool, spec_of, steady_trace

GPU = {"gpu": pool(throughput=100.0)}  # target per replica: 100 x 0.5 = 50 chars/s


def view(now: float, rate: float, current: int) -> View:
    return View(now, START + now, rate, rate, {"gpu": PoolState(current, current)})


@pytest.mark.parametrize(
    ("label", "rate", "current", "expected"),
    [
        ("ceil(rate / target)", 260.0, 2, 6),
        ("within tolerance: keep", 105.0, 2, 2),
        ("just outside tolerance", 111.0, 2, 3),
        ("never below one", 0.0, 3, 1),  # no earlier recommendation holds it up
    ],
)
def test_hpa_formula(label, rate, current, expected):
    spec = spec_of(GPU, targetUtilization=0.5)
    hpa = HPA(spec, spec.pools["gpu"])
    assert hpa.decide(view(0.0, rate, current)) == {"gpu": expected}, label


def test_hpa_scales_down_only_after_the_stabilisation_window():
    spec = spec_of(GPU, targetUtilization=0.5)
    hpa = HPA(spec, spec.pools["gpu"])
    assert hpa.decide(view(0.0, 300.0, 6)) == {"gpu": 6}
    assert hpa.decide(view(15.0, 100.0, 6)) == {"gpu": 6}
    assert hpa.decide(view(285.0, 100.0, 6)) == {"gpu": 6}
    assert hpa.decide(view(300.0, 100.0, 6)) == {"gpu": 2}  # the 6 at t=0 has aged out


def test_keda_scales_to_zero_after_the_cooldown_and_back_on_traffic():
    spec = spec_of(GPU, targetUtilization=0.5)
    keda = KEDA(spec, spec.pools["gpu"])
    assert keda.decide(view(0.0, 100.0, 2)) == {"gpu": 2}
    assert keda.decide(view(30.0, 0.0, 2)) == {"gpu": 2}  # cooling down
    assert keda.decide(view(299.0, 0.0, 2)) == {"gpu": 2}
    assert keda.decide(view(300.0, 0.0, 2)) == {"gpu": 0}
    assert keda.decide(view(330.0, 0.0, 0)) == {"gpu": 0}
    assert keda.decide(view(360.0, 40.0, 0)) == {"gpu": 1}


def test_keda_cron_floor_comes_from_the_spec_windows():
    spec = parse_spec({
        "pools": GPU | {"cpu": pool("cpu", throughput=30.0)},
        "scaling": {"targetUtilization": 0.5},
        "schedule": {"windows": [{"name": "day", "start": "0 8 * * *", "duration": "10h",
                                  "pools": {"gpu": {"minReplicas": 3}}}]},
    })
    assert cron_floors(spec, spec.pools["gpu"]) == {"day": 3}
    keda = KEDA(spec, spec.pools["gpu"])
    nine = 9 * 3600.0
    assert keda.decide(view(nine, 0.0, 0)) == {"gpu": 3}
    assert keda.decide(view(nine + 400, 0.0, 3)) == {"gpu": 3}  # no scale to zero
    assert keda.decide(view(20 * 3600.0, 0.0, 3)) == {"gpu": 0}  # window over, no traffic


def test_elastic_tts_falls_back_to_on_demand_when_spot_is_interrupted():
    spec = default_spec()
    trace = compressed_day(hours=2.0)

    def run(rate: float) -> RunResult:
        return simulate(trace, spec, ElasticTTS(spec), dispatch="capacity-weighted",
                        spot=SpotConditions(interruptions_per_hour=rate), seed=3)

    calm, storm = run(0.0), run(1.0)
    gpu, spot = "gpu", "gpu-spot"
    index = {name: i for i, name in enumerate(calm.pools)}
    assert calm.replica_seconds[index[gpu]] == 0  # on-demand GPU is never the cheapest
    assert storm.replica_seconds[index[gpu]] > 0  # it covers spot while spot backs off
    assert storm.timeline.billed[-1, index[spot]] > 0  # and spot is back by the end


def compressed_day(hours: float) -> Trace:
    """The built-in day replayed in `hours`, thinned so the load level stays the same."""
    factor = 24.0 / hours
    return scale(speedup(builtin_day(), factor), 1.0 / factor)


SHORT_TRACES = {
    "the built-in day in two hours": lambda: compressed_day(2.0),
    "steady": lambda: steady_trace(2.0, 1800, chars=150),
    "ramp": lambda: make_trace(
        "ramp", np.sort(np.sqrt(np.linspace(0, 1, 6000)) * 3600), np.full(6000, 120),
        START),
}


@pytest.mark.parametrize("name", list(SHORT_TRACES))
def test_no_policy_costs_less_than_the_oracle(name):
    comparison = compare(SHORT_TRACES[name](), default_spec(), seed=2, both_dispatches=False)
    figures = summaries(comparison)
    oracle = figures["oracle"].cost
    assert oracle > 0
    for policy, summary in figures.items():
        assert summary.cost >= oracle - 1e-9, (policy, summary.cost, oracle)


def test_the_same_seed_gives_the_same_result_and_another_seed_does_not():
    trace = compressed_day(1.0)
    weather = SpotWeather(interruptions_per_hour=1.0, shortages_per_day=24.0)

    def figures(seed: int) -> dict[str, tuple[float, float, int]]:
        result = compare(trace, default_spec(), seed=seed, weather=weather)
        return {n: (s.cost, s.slo_attainment, s.scale_events)
                for n, s in summaries(result).items()}

    assert figures(5) == figures(5)
    assert figures(5)["elastic-tts"] != figures(6)["elastic-tts"]
