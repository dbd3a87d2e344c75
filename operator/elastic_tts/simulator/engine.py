"""The time-stepped loop: one policy over one trace, one second per step.

Each step, in order: cluster events due in this second (replicas becoming Ready, spot
interruptions, drains finishing); the controller, when its interval has come round; the
requests arriving in this second. Arrivals are bucketed per second once, with numpy,
and the controller is only called every `interval` seconds, which is what keeps a
24-hour trace at 1 s steps fast.

At the start every policy gets its first decision Ready at once, with the Prometheus
view primed as if the first five minutes' load had been running (see `prometheus`).
The run ends at the end of the trace; requests still waiting then are counted as
missing the SLO, with an infinite latency.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from elastic_tts.policy.spec import TTSServiceSpec
from elastic_tts.simulator.cluster import Cluster, SpotConditions
from elastic_tts.simulator.policies import Policy, View
from elastic_tts.simulator.prometheus import LONG_WINDOW, SHORT_WINDOW, PrometheusView
from elastic_tts.simulator.trace import FloatArray, Trace

Progress = Callable[[int], None]
PROGRESS_EVERY = 3600  # simulated seconds between progress callbacks


@dataclass(frozen=True)
class Timeline:
    """Replica counts per pool, sampled at every change (step functions)."""

    times: FloatArray  # seconds from the start
    billed: np.ndarray  # [change, pool] replicas being paid for
    ready: np.ndarray  # [change, pool] replicas serving


@dataclass(frozen=True)
class RunResult:
    policy: str
    pools: tuple[str, ...]
    prices: tuple[float, ...]  # per replica-hour, in pool order
    gpu: tuple[bool, ...]
    latency: FloatArray  # per request, seconds; inf when never served
    cost: float
    replica_seconds: tuple[float, ...]  # per pool
    scale_events: int
    timeline: Timeline
    duration: float


def simulate(trace: Trace, spec: TTSServiceSpec, policy: Policy, *, dispatch: str,
             spot: SpotConditions, seed: int, prometheus: PrometheusView | None = None,
             progress: Progress | None = None) -> RunResult:
    view_source = prometheus or PrometheusView(trace)
    metric = spec.scaling.metric
    length = int(trace.duration)
    cluster = Cluster(spec.pools, trace.times, trace.chars, dispatch, spot, seed,
                      instant=policy.instant)
    bounds = np.searchsorted(trace.times, np.arange(length + 1, dtype=np.float64)).tolist()
    arrivals = trace.times.tolist()
    names = list(spec.pools)

    def look(now: float) -> View:
        return View(now, trace.start_epoch + now, view_source.rate(metric, now, SHORT_WINDOW),
                    view_source.rate(metric, now, LONG_WINDOW), cluster.states(now))

    targets = policy.decide(look(0.0))
    cluster.instant, instant = True, cluster.instant  # the first decision starts Ready
    for name in names:
        cluster.scale(name, targets.get(name, 0), 0.0)
    cluster.instant = instant

    stamps: list[float] = []
    billed: list[tuple[int, ...]] = []
    ready: list[tuple[int, ...]] = []
    scale_events = 0
    next_tick = policy.interval
    dispatch_one = cluster.dispatch
    for second in range(length):
        if cluster.events and cluster.events[0][0] < second + 1:
            cluster.run_events(second + 1)
        if second >= next_tick:
            next_tick += policy.interval
            wanted = policy.decide(look(float(second)))
            for name in names:
                target = wanted.get(name, 0)
                if target != targets.get(name, 0):
                    scale_events += 1
                cluster.scale(name, target, float(second))
            targets = wanted
        for index in range(bounds[second], bounds[second + 1]):
            dispatch_one(index, arrivals[index])
        if cluster.changed:
            cluster.changed = False
            stamps.append(float(second))
            counts = cluster.counts()
            billed.append(counts[0])
            ready.append(counts[1])
        if progress is not None and second % PROGRESS_EVERY == PROGRESS_EVERY - 1:
            progress(PROGRESS_EVERY)
    if progress is not None:
        progress(length % PROGRESS_EVERY)
    cluster.close(float(length))
    latency = cluster.finish - trace.times
    return RunResult(
        policy=policy.name,
        pools=tuple(names),
        prices=tuple(p.cost_per_hour for p in spec.pools.values()),
        gpu=tuple(p.is_gpu for p in spec.pools.values()),
        latency=latency,
        cost=cluster.cost,
        replica_seconds=tuple(p.replica_seconds for p in cluster.pools),
        scale_events=scale_events,
        timeline=Timeline(np.asarray(stamps), np.asarray(billed).reshape(-1, len(names)),
                          np.asarray(ready).reshape(-1, len(names))),
        duration=float(length),
    )


def slo_limits(spec: TTSServiceSpec, chars: np.ndarray) -> FloatArray:
    """Each request's latency SLO: latencySLOSeconds x max(1, c/100)."""
    result: FloatArray = spec.scaling.latency_slo_seconds * np.maximum(1.0, chars / 100.0)
    return result


def hours(seconds: float) -> float:
    return seconds / 3600.0


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
