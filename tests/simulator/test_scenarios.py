"""The robustness scenarios (simulator/scenarios.py): pure functions of their seed, with
the shapes their docstring promises; and the engine keeping warm capacity for recurring
bursts, replayed through the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from elastic_tts.simulator.compare import SpotWeather, default_dispatch, spot_conditions
from elastic_tts.simulator.defaults import default_spec
from elastic_tts.simulator.engine import simulate
from elastic_tts.simulator.policies import ElasticTTS
from elastic_tts.simulator.prometheus import TraceRates
from elastic_tts.simulator.scenarios import SCENARIOS, near_idle_bursts
from elastic_tts.simulator.trace import Trace


def per_second(trace: Trace) -> np.ndarray:
    return np.bincount(trace.times.astype(np.int64), minlength=int(trace.duration))


def mean_rate(trace: Trace, start_minute: float, end_minute: float) -> float:
    counts = per_second(trace)
    return float(counts[int(start_minute * 60):int(end_minute * 60)].mean())


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_scenario_is_a_pure_function_of_its_seed(name: str) -> None:
    first, again, other = SCENARIOS[name](1), SCENARIOS[name](1), SCENARIOS[name](2)
    assert np.array_equal(first.times, again.times)
    assert np.array_equal(first.chars, again.chars)
    assert first.times.size != other.times.size or not np.array_equal(first.times, other.times)


@pytest.mark.parametrize(
    ("name", "quiet", "busy", "ratio"),
    [
        # (minutes where the rate is low, minutes where it is high, high / low)
        ("flash crowd", (5, 19), (21, 24), 10.0),
        ("ramp", (0, 9), (41, 60), 20.0),
        ("steady", (0, 30), (30, 60), 1.0),
    ],
)
def test_shapes(name: str, quiet: tuple[float, float], busy: tuple[float, float],
                ratio: float) -> None:
    trace = SCENARIOS[name](1)
    measured = mean_rate(trace, *busy) / mean_rate(trace, *quiet)
    assert measured == pytest.approx(ratio, rel=0.15), name


def test_near_idle_hours_have_short_bursts_far_apart() -> None:
    trace = near_idle_bursts(1)
    counts = per_second(trace)
    busy = np.flatnonzero(np.convolve(counts, np.ones(10), "same") >= 20)
    starts = busy[np.insert(np.diff(busy) > 60, 0, True)]
    ends = busy[np.append(np.diff(busy) > 60, True)]
    assert len(starts) >= 6
    assert np.all(ends - starts <= 100)  # every burst shorter than a GPU cold start
    assert np.all(starts[1:] - ends[:-1] >= 4 * 60 - 20)
    assert counts.sum() - counts[busy].sum() < trace.duration / 60 * 2  # ~1 request/min


def test_compressed_day_keeps_the_days_shape_in_two_hours() -> None:
    trace = SCENARIOS["compressed day"](1)
    assert trace.duration <= 2 * 3600
    five = per_second(trace)[: 24 * 300].reshape(-1, 300).mean(axis=1)
    assert five.max() / five.min() == pytest.approx(8.0, rel=0.3)


def test_recurring_bursts_find_gpu_capacity_warm() -> None:
    """Between bursts shorter than a cold start, the engine used to fall back to its one
    CPU replica, so every burst landed on it. Once two bursts have recurred, each later
    one must find GPU replicas Ready when it starts."""
    spec, trace = default_spec(), near_idle_bursts(1)
    rates = TraceRates(trace)
    result = simulate(trace, spec, ElasticTTS(spec), dispatch=default_dispatch(spec),
                      spot=spot_conditions(trace, rates, SpotWeather(), 1), seed=1,
                      rates=rates)
    counts = per_second(trace)
    busy = np.flatnonzero(np.convolve(counts, np.ones(10), "same") >= 20)
    starts = busy[np.insert(np.diff(busy) > 60, 0, True)]
    gpus = [i for i, name in enumerate(result.pools) if spec.pools[name].is_gpu]
    timeline = result.timeline
    for start in starts[2:]:
        at = np.searchsorted(timeline.times, start - 10, side="right") - 1
        assert timeline.ready[at, gpus].sum() > 0, start
