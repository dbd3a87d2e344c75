"""The time-stepped loop: one policy over one trace, one second per step.

Each step, in order: cluster events due in this second (replicas becoming Ready, spot
interruptions and waves, drains finishing); a Prometheus scrape when one is due; the
controller, when its interval has come round; the attempts of this second (first
attempts and retries, in time order). Arrivals are bucketed per second once, with numpy,
and the controller is only called every `interval` seconds, which is what keeps a 24-hour
trace at 1 s steps fast.

At the start every policy gets its first decision Ready at once, with the Prometheus
view primed as if the first five minutes' load had been running (see `prometheus`). The
run goes on after the last arrival until every client has its answer or has given up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from elastic_tts.policy.spec import TTSServiceSpec
from elastic_tts.reconcile.render import route_weights
from elastic_tts.simulator.cluster import (
    ROUTE,
    Cluster,
    ReplicaBehaviour,
    SpotConditions,
    WorkerModel,
)
from elastic_tts.simulator.policies import Policy, View
from elastic_tts.simulator.prometheus import (
    BACKLOG,
    CHARS,
    REFUSALS,
    REQUESTS,
    MetricsModel,
    Scraper,
    TraceRates,
)
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
    latency: FloatArray  # per request, seconds; inf when never answered in time
    cost: float
    replica_seconds: tuple[float, ...]  # per pool
    scale_events: int
    timeline: Timeline
    duration: float
    attempts: int  # every attempt, retries included
    refusals: int  # 429s answered
    spot_events: tuple[tuple[float, str, str], ...]  # (time, pool, what)


def slo_limits(spec: TTSServiceSpec, chars: np.ndarray) -> FloatArray:
    """Each request's latency SLO: latencySLOSeconds x max(1, c/100)."""
    result: FloatArray = spec.scaling.latency_slo_seconds * np.maximum(1.0, chars / 100.0)
    return result


def simulate(trace: Trace, spec: TTSServiceSpec, policy: Policy, *, dispatch: str,
             spot: SpotConditions, seed: int, rates: TraceRates | None = None,
             worker: WorkerModel | None = None, metrics: MetricsModel | None = None,
             progress: Progress | None = None,
             replicas: Mapping[str, ReplicaBehaviour] | None = None) -> RunResult:
    """`replicas`: how pools' replicas really behave where that differs from what `spec`
    declares (a measured run's replay); the policy still plans with `spec`, as the
    operator knows only what the TTSService says."""
    rates = rates or TraceRates(trace)
    worker = worker or WorkerModel()
    metrics = metrics or MetricsModel()
    length = int(trace.duration)
    budgets = slo_limits(spec, trace.chars.astype(np.float64))
    cluster = Cluster(spec.pools, trace.times, trace.chars, budgets, dispatch, spot, seed,
                      instant=policy.instant, worker=worker, behaviour=replicas)
    if policy.together is not None:
        cluster.spill(*policy.together)
    scraper = Scraper(rates, metrics.scrape_seconds)
    bounds = np.searchsorted(trace.times, np.arange(length + 1, dtype=np.float64)).tolist()
    names = list(spec.pools)
    metric = spec.scaling.metric
    rate_of = CHARS if metric == "characters" else REQUESTS

    def look(now: float) -> View:
        return View(
            now=now, epoch=trace.start_epoch + now,
            short_rate=scraper.rate(rate_of, now, metrics.short_window),
            long_rate=scraper.rate(rate_of, now, metrics.long_window),
            pools=cluster.states(now),
            burst_rate=scraper.rate(rate_of, now, metrics.burst_window),
            requests_rate=scraper.rate(REQUESTS, now, metrics.long_window),
            backlog_characters=scraper.gauge(BACKLOG, now, metrics.burst_window),
            refused_share=scraper.share(REFUSALS, REQUESTS, now, metrics.long_window),
        )

    def apply(wanted: dict[str, int], now: float) -> None:
        if policy.together is not None:
            cluster.scale_together(policy.together, sum(wanted.values()), now)
        else:
            for name in names:
                cluster.scale(name, wanted.get(name, 0), now)

    def reroute(view: View) -> None:
        # The operator rewrites the HTTPRoute's weights from Ready counts every tick.
        if dispatch == ROUTE:
            cluster.set_route_weights(route_weights(spec, {n: s.ready
                                                           for n, s in view.pools.items()}))

    scraper.record(cluster.counters(0.0))
    view = look(0.0)
    targets = policy.decide(view)
    first = {n: targets.get(n, 0) for n in names}
    if policy.together is not None:  # one Deployment, started on its first pool
        first = {n: (sum(first.values()) if n == policy.together[0] else 0) for n in names}
    for name in names:
        cluster.start_ready(name, first[name], 0.0)
    reroute(look(0.0))

    stamps: list[float] = []
    billed: list[tuple[int, ...]] = []
    ready: list[tuple[int, ...]] = []
    scale_events = 0
    next_tick = policy.interval
    horizon = length + math.ceil(worker.client_timeout)
    send = cluster.send
    for second in range(horizon):
        if second >= length and not cluster.retries:
            break
        if cluster.events and cluster.events[0][0] < second + 1:
            cluster.run_events(second + 1)
        if second % metrics.scrape_seconds == 0 and second:
            scraper.record(cluster.counters(float(second)))
        if second >= next_tick and second < length:
            next_tick += policy.interval
            view = look(float(second))
            wanted = policy.decide(view)
            for name in names:
                if wanted.get(name, 0) != targets.get(name, 0):
                    scale_events += 1
            apply(wanted, float(second))
            reroute(view)
            targets = wanted
        if second < length:
            send(bounds[second], bounds[second + 1], second)
        else:
            send(0, 0, second)
        if cluster.changed and second < length:
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
    latency[latency > worker.client_timeout] = math.inf
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
        attempts=sum(cluster.tries),
        refusals=sum(p.refusals for p in cluster.pools),
        spot_events=tuple(cluster.spot_events),
    )


def hours(seconds: float) -> float:
    return seconds / 3600.0


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
