"""Run every policy over one trace in the same simulated cluster, and keep the results.

Spot shortages are drawn once per comparison from the seed (the same episodes for
every policy); interruptions are drawn per run from the seed, so the same seed always
gives the same figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from elastic_tts.policy.spec import TTSServiceSpec
from elastic_tts.simulator.cluster import CAPACITY_WEIGHTED, ROUND_ROBIN, SpotConditions
from elastic_tts.simulator.engine import Progress, RunResult, simulate
from elastic_tts.simulator.policies import (
    HPA,
    KEDA,
    CPUOnly,
    ElasticTTS,
    Oracle,
    Policy,
    StaticGPU,
    cpu_only_feasible,
    single_gpu_pool,
)
from elastic_tts.simulator.prometheus import PrometheusView
from elastic_tts.simulator.trace import Trace

POLICY_NAMES = ("elastic-tts", "static-gpu", "hpa", "keda", "cpu-only", "oracle")


@dataclass(frozen=True)
class SpotWeather:
    """How hostile spot is: the knobs behind `SpotConditions`, before any draws."""

    interruptions_per_hour: float = 0.05  # per running spot replica
    notice_seconds: float = 120.0
    shortages_per_day: float = 2.0
    shortage_minutes: float = 20.0  # mean length of a shortage


@dataclass
class Comparison:
    trace: Trace
    spec: TTSServiceSpec
    dispatch: str
    seed: int
    spot: SpotConditions
    results: dict[str, RunResult] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)  # policy -> why it was not run
    other_dispatch: RunResult | None = None  # elastic-tts under the other dispatch
    elapsed: float = 0.0


def default_dispatch(spec: TTSServiceSpec) -> str:
    return CAPACITY_WEIGHTED if spec.routing.enabled else ROUND_ROBIN


def shortages(duration: float, weather: SpotWeather, seed: int
              ) -> tuple[tuple[float, float], ...]:
    """Seeded Poisson episodes during which no new spot replica can start."""
    rate = weather.shortages_per_day / 86400.0
    if rate <= 0 or duration <= 0:
        return ()
    rng = np.random.default_rng([seed, 1])
    episodes: list[tuple[float, float]] = []
    now = float(rng.exponential(1.0 / rate))
    while now < duration:
        end = now + float(rng.exponential(weather.shortage_minutes * 60.0))
        episodes.append((float(np.floor(now)), float(np.ceil(end))))
        now = end + float(rng.exponential(1.0 / rate))
    return tuple(episodes)


def build_policies(spec: TTSServiceSpec, prometheus: PrometheusView
                   ) -> tuple[list[Policy], dict[str, str]]:
    metric = spec.scaling.metric
    minutes = prometheus.per_minute(metric)
    policies: list[Policy] = [ElasticTTS(spec)]
    omitted: dict[str, str] = {}
    gpu = single_gpu_pool(spec)
    if gpu is None:
        for name in ("static-gpu", "hpa", "keda"):
            omitted[name] = "the spec has no GPU pool that meets the SLO"
    else:
        policies += [StaticGPU(spec, gpu, float(minutes.max())), HPA(spec, gpu), KEDA(spec, gpu)]
    if cpu_only_feasible(spec):
        policies.append(CPUOnly(spec))
    else:
        omitted["cpu-only"] = (
            f"no CPU pool serves 100 characters within {spec.scaling.latency_slo_seconds:g} s")
    policies.append(Oracle(spec, minutes))
    return policies, omitted


def compare(trace: Trace, spec: TTSServiceSpec, *, dispatch: str | None = None, seed: int = 1,
            weather: SpotWeather | None = None, both_dispatches: bool = True,
            progress: Progress | None = None) -> Comparison:
    started = time.perf_counter()
    weather = weather or SpotWeather()
    spot = SpotConditions(weather.interruptions_per_hour, weather.notice_seconds,
                          shortages(trace.duration, weather, seed))
    chosen = dispatch or default_dispatch(spec)
    prometheus = PrometheusView(trace)
    policies, omitted = build_policies(spec, prometheus)
    comparison = Comparison(trace, spec, chosen, seed, spot, omitted=omitted)
    for policy in policies:
        comparison.results[policy.name] = simulate(
            trace, spec, policy, dispatch=chosen, spot=spot, seed=seed,
            prometheus=prometheus, progress=progress)
    if both_dispatches and len(spec.pools) > 1:
        other = ROUND_ROBIN if chosen == CAPACITY_WEIGHTED else CAPACITY_WEIGHTED
        # The engine plans for the dispatch it is told about (spec.routing), so the other
        # row is the same service with routing switched, as a user would deploy it.
        routed = replace(spec, routing=replace(spec.routing, enabled=other == CAPACITY_WEIGHTED))
        comparison.other_dispatch = simulate(
            trace, routed, ElasticTTS(routed), dispatch=other, spot=spot, seed=seed,
            prometheus=prometheus, progress=progress)
    comparison.elapsed = time.perf_counter() - started
    return comparison


def runs_planned(spec: TTSServiceSpec, both_dispatches: bool = True) -> int:
    """How many simulations `compare` will run (for sizing a progress bar)."""
    runs = 2  # elastic-tts and the oracle always run
    runs += 3 if single_gpu_pool(spec) is not None else 0
    runs += 1 if cpu_only_feasible(spec) else 0
    return runs + (1 if both_dispatches and len(spec.pools) > 1 else 0)
