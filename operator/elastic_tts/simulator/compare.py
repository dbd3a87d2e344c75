"""Run every policy and both bounds over one trace in the same simulated cluster.

Spot weather (shortages, waves) is drawn once per seed, the same for every policy;
interruptions of single replicas are drawn per run from the seed, so the same seed always
gives the same figures. Runs are independent, so they go to a pool of processes (one per
core); the oracle's sweep waits only for elastic-tts's SLO, which it must reach.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from elastic_tts.policy.spec import TTSServiceSpec
from elastic_tts.simulator.baselines import build_baselines
from elastic_tts.simulator.bounds import (
    BUCKETS,
    SEARCH_STEPS,
    Oracle,
    Variant,
    search_utilisations,
    work_floor,
)
from elastic_tts.simulator.cluster import ROUTE, SERVICE, SpotConditions, WorkerModel
from elastic_tts.simulator.engine import RunResult, simulate, slo_limits
from elastic_tts.simulator.policies import CPUOnly, ElasticTTS, Policy, cpu_only_feasible
from elastic_tts.simulator.prometheus import TraceRates
from elastic_tts.simulator.trace import Trace

POLICY_NAMES = ("elastic-tts", "static-gpu", "hpa", "keda", "keda+karpenter", "keda-spot",
                "hpa-cpu", "cpu-only")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class SpotWeather:
    """How hostile spot is: the knobs behind `SpotConditions`, before any draws."""

    interruptions_per_hour: float = 0.05  # per running spot replica
    notice_seconds: float = 120.0
    shortages_per_day: float = 2.0  # timed where the load is (busy hours, ramps)
    shortage_minutes: float = 20.0  # mean length of a shortage
    waves_per_day: float = 1.0  # each takes `wave_fraction` of the spot replicas
    wave_fraction: float = 0.5


@dataclass(frozen=True)
class OracleResult:
    variant: Variant
    result: RunResult
    slo_attainment: float
    measured: tuple[tuple[int, float, float, float], ...]  # (bucket, u, slo, cost)


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
    work_floor: float = 0.0
    oracle: OracleResult | None = None  # None: no variant reached elastic-tts's SLO
    oracle_measured: tuple[tuple[int, float, float, float], ...] = ()
    elapsed: float = 0.0


def default_dispatch(spec: TTSServiceSpec) -> str:
    return ROUTE if spec.routing.enabled else SERVICE


def spot_conditions(trace: Trace, rates: TraceRates, weather: SpotWeather, seed: int
                    ) -> SpotConditions:
    """Seeded shortages (Poisson, more likely where the load is high, so they fall on
    peaks and ramps when spot is scaling up) and waves (uniform in time; a wave brings a
    shortage with it: the provider is taking the capacity back)."""
    duration = trace.duration
    days = duration / 86400.0
    episodes: list[tuple[float, float]] = []
    rng = np.random.default_rng([seed, 1])
    expected = weather.shortages_per_day * days
    load = rates.chars + 1e-9
    intensity = np.cumsum(load) / load.sum() * expected  # expected shortages by second
    point = float(rng.exponential(1.0))
    while point < expected:
        start = float(np.searchsorted(intensity, point))
        episodes.append((start, start + float(rng.exponential(weather.shortage_minutes * 60))))
        point += float(rng.exponential(1.0))
    waves: list[float] = []
    wave_rng = np.random.default_rng([seed, 2])
    if weather.waves_per_day > 0:
        at = float(wave_rng.exponential(86400.0 / weather.waves_per_day))
        while at < duration:
            waves.append(float(np.floor(at)))
            length = float(wave_rng.exponential(weather.shortage_minutes * 60))
            episodes.append((float(np.floor(at)), float(np.floor(at)) + length))
            at += float(wave_rng.exponential(86400.0 / weather.waves_per_day))
    merged: list[tuple[float, float]] = []
    for start, end in sorted((float(np.floor(s)), float(np.ceil(e))) for s, e in episodes):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return SpotConditions(weather.interruptions_per_hour, weather.notice_seconds,
                          tuple(merged), tuple(waves), weather.wave_fraction)


def build_policies(spec: TTSServiceSpec, trace: Trace, rates: TraceRates
                   ) -> tuple[list[Policy], dict[str, str]]:
    peak = float(rates.per_bucket(spec.scaling.metric, 60).max())
    baselines, omitted = build_baselines(spec, peak)
    policies: list[Policy] = [ElasticTTS(spec), *baselines]
    if cpu_only_feasible(spec):
        policies.append(CPUOnly(spec))
    else:
        omitted["cpu-only"] = (
            f"no CPU pool serves 100 characters within {spec.scaling.latency_slo_seconds:g} s")
    return policies, omitted


@dataclass(frozen=True)
class _Job:
    trace: Trace
    spec: TTSServiceSpec
    policy: Policy | None  # None: an oracle search, or a baseline's with `baseline`
    dispatch: str
    spot: SpotConditions
    seed: int
    worker: WorkerModel
    bucket: int = 0
    target: float = 0.0
    baseline: str = ""  # search this baseline's targetUtilization instead of the oracle's


def within_slo(spec: TTSServiceSpec, trace: Trace, result: RunResult) -> float:
    limits = slo_limits(spec, trace.chars.astype(np.float64))
    return float(np.count_nonzero(result.latency <= limits)) / max(1, limits.size)


def _baseline_at(job: _Job, rates: TraceRates, utilization: float) -> Policy:
    spec = replace(job.spec, scaling=replace(job.spec.scaling,
                                             target_utilization=utilization))
    peak = float(rates.per_bucket(spec.scaling.metric, 60).max())
    return next(p for p in build_baselines(spec, peak)[0] if p.name == job.baseline)


def _run(job: _Job) -> Any:
    rates = TraceRates(job.trace)
    if job.policy is not None:
        return simulate(job.trace, job.spec, job.policy, dispatch=job.dispatch,
                        spot=job.spot, seed=job.seed, rates=rates, worker=job.worker)
    runs: dict[float, RunResult] = {}

    def measure(utilization: float) -> tuple[float, float, None]:
        policy = _baseline_at(job, rates, utilization) if job.baseline else Oracle(
            job.spec, job.trace, rates, Variant(job.bucket, utilization))
        dispatch = SERVICE if job.baseline else job.dispatch  # baselines: a plain Service
        result = simulate(job.trace, job.spec, policy, dispatch=dispatch, spot=job.spot,
                          seed=job.seed, rates=rates, worker=job.worker)
        runs[utilization] = result
        return within_slo(job.spec, job.trace, result), result.cost, None

    measured = search_utilisations(measure, job.target)
    table = tuple((job.bucket, u, s, c) for u, (s, c, _) in sorted(measured.items()))
    meeting = [(c, -u, u) for u, (s, c, _) in measured.items() if s + 1e-12 >= job.target]
    if not meeting:
        return table, None
    _, _, best = min(meeting)
    return table, (best, runs[best])


def _executor(jobs: int) -> concurrent.futures.Executor:
    workers = max(1, min(jobs, os.cpu_count() or 1))
    if workers == 1:
        return _Inline()
    context = multiprocessing.get_context("fork") if hasattr(os, "fork") else None
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=context)


class _Inline(concurrent.futures.Executor):
    """The same interface without processes (one core)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
               ) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        return future


def compare(trace: Trace, spec: TTSServiceSpec, *, dispatch: str | None = None, seed: int = 1,
            weather: SpotWeather | None = None, both_dispatches: bool = True,
            worker: WorkerModel | None = None, progress: Progress | None = None
            ) -> Comparison:
    started = time.perf_counter()
    weather = weather or SpotWeather()
    worker = worker or WorkerModel()
    rates = TraceRates(trace)
    spot = spot_conditions(trace, rates, weather, seed)
    chosen = dispatch or default_dispatch(spec)
    policies, omitted = build_policies(spec, trace, rates)
    comparison = Comparison(trace, spec, chosen, seed, spot, omitted=omitted)
    jobs = {p.name: _Job(trace, spec, p, chosen, spot, seed, worker) for p in policies}
    if both_dispatches and len(spec.pools) > 1:
        other = SERVICE if chosen == ROUTE else ROUTE
        # The engine plans for the dispatch it is told about (spec.routing), so the other
        # row is the same service with routing switched, as a user would deploy it.
        routed = replace(spec, routing=replace(spec.routing, enabled=other == ROUTE))
        jobs["other dispatch"] = _Job(trace, routed, ElasticTTS(routed), other, spot, seed,
                                      worker)
    units = int(trace.duration)
    with _executor(len(jobs) + len(BUCKETS)) as pool:
        futures = {pool.submit(_run, job): name for name, job in jobs.items()}
        ours = next(f for f, n in futures.items() if n == "elastic-tts").result()
        target = within_slo(spec, trace, ours)
        searches = [pool.submit(_run, _Job(trace, spec, None, chosen, spot, seed, worker,
                                           bucket, target)) for bucket in BUCKETS]
        comparison.work_floor = work_floor(trace, spec)
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            if name == "other dispatch":
                comparison.other_dispatch = future.result()
            else:
                comparison.results[name] = future.result()
            if progress is not None:
                progress(units)
        best: OracleResult | None = None
        measured: list[tuple[int, float, float, float]] = []
        for search in searches:
            table, found = search.result()
            measured += table
            if progress is not None:
                progress(units * len(table))
            if found is None:
                continue
            utilization, result = found
            candidate = OracleResult(Variant(table[0][0], utilization), result,
                                     within_slo(spec, trace, result), tuple(table))
            if best is None or result.cost < best.result.cost:
                best = candidate
    comparison.results = {n: comparison.results[n] for n in POLICY_NAMES
                          if n in comparison.results}
    comparison.oracle = best
    comparison.oracle_measured = tuple(measured)
    comparison.elapsed = time.perf_counter() - started
    return comparison


@dataclass(frozen=True)
class Tuned:
    """A baseline at the targetUtilization that reaches elastic-tts's SLO for least."""

    name: str
    utilization: float | None  # None: no utilisation on the grid reached it
    result: RunResult | None
    measured: tuple[tuple[int, float, float, float], ...]


def tune_baselines(comparison: Comparison, worker: WorkerModel | None = None
                   ) -> dict[str, Tuned]:
    """Each baseline as its strongest configuration at elastic-tts's SLO: its
    targetUtilization searched over the oracle's grid (what a platform engineer would
    tune), the cheapest that reaches elastic-tts's within-SLO share kept."""
    worker = worker or WorkerModel()
    trace, spec = comparison.trace, comparison.spec
    target = within_slo(spec, trace, comparison.results["elastic-tts"])
    names = [n for n in comparison.results if n not in ("elastic-tts", "cpu-only")]
    jobs = {n: _Job(trace, spec, None, comparison.dispatch, comparison.spot, comparison.seed,
                    worker, target=target, baseline=n) for n in names}
    tuned: dict[str, Tuned] = {}
    with _executor(len(jobs)) as pool:
        futures = {pool.submit(_run, job): name for name, job in jobs.items()}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            table, found = future.result()
            if found is None:
                tuned[name] = Tuned(name, None, None, tuple(table))
            else:
                tuned[name] = Tuned(name, found[0], found[1], tuple(table))
    return {n: tuned[n] for n in names}


def runs_planned(spec: TTSServiceSpec, both_dispatches: bool = True) -> int:
    """About how many simulations `compare` runs (for sizing a progress bar): every
    policy, the other dispatch, and the oracle variants a bisection of the utilisation
    grid measures per bucket length."""
    policies, _ = build_baselines(spec, 1.0)
    runs = 1 + len(policies) + (1 if cpu_only_feasible(spec) else 0)
    other_dispatch = 1 if both_dispatches and len(spec.pools) > 1 else 0
    return runs + other_dispatch + SEARCH_STEPS * len(BUCKETS)
