"""The policies compared in one simulator. Each sees the same Prometheus-like view.

- elastic-tts: the real `decide` from the decision engine, memory carried between ticks.
- static-gpu: on-demand GPU sized once for the trace's busiest minute.
- hpa: one GPU pool, ceil(current x metric / target) with tolerance 0.1, 300 s scale-down
  stabilisation and a 15 s sync; never below one replica.
- keda: one GPU pool, a Prometheus threshold (the same formula through KEDA's HPA) plus a
  cron floor, polled every 30 s; to zero after a 300 s cooldown without traffic.
- cpu-only: the same engine restricted to the CPU pools (only when they meet the SLO).
- oracle: hindsight and instant scaling; each minute the cheapest mix whose capacity
  covers that minute's load at the target utilisation, from the engine's own optimiser.

The per-replica target of hpa and keda is the one elastic-tts uses, throughput x
targetUtilization, so the comparison is about how each scales, not how hard it runs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace

from elastic_tts.policy import Memory, Observation, PoolState, decide
from elastic_tts.policy.decide import capacity_per_replica
from elastic_tts.policy.optimise import PoolOption, optimise
from elastic_tts.policy.schedule import active_window, evaluate_schedule
from elastic_tts.policy.spec import Pool, TTSServiceSpec
from elastic_tts.simulator.trace import FloatArray

STABILISATION_SECONDS = 300.0
TOLERANCE = 0.1


@dataclass(frozen=True)
class View:
    """What a controller knows at one tick."""

    now: float  # seconds from the start of the trace
    epoch: float  # the same instant as POSIX time
    short_rate: float  # ~1 minute rate, in the spec's metric unit
    long_rate: float  # ~5 minute rate
    pools: Mapping[str, PoolState]


class Policy(ABC):
    """One controller the simulator compares: every `interval` seconds it sees a `View`
    and returns the replicas it wants per pool."""

    name = "policy"
    interval = 15.0
    instant = False  # replicas Ready at once, never short of spot (the oracle only)

    @abstractmethod
    def decide(self, view: View) -> dict[str, int]:
        """Target replicas per pool for this tick."""


class ElasticTTS(Policy):
    name = "elastic-tts"

    def __init__(self, spec: TTSServiceSpec) -> None:
        self.spec = spec
        self.interval = spec.scaling.interval_seconds
        self.memory = Memory()
        self.last_reason = ""

    def decide(self, view: View) -> dict[str, int]:
        observation = Observation(view.short_rate, view.long_rate, view.pools)
        decision = decide(self.spec, observation, self.memory, view.epoch)
        self.memory = decision.memory
        self.last_reason = decision.reason
        return dict(decision.replicas)


class CPUOnly(ElasticTTS):
    name = "cpu-only"

    def __init__(self, spec: TTSServiceSpec) -> None:
        super().__init__(cpu_only_spec(spec))


def cpu_only_spec(spec: TTSServiceSpec) -> TTSServiceSpec:
    pools = {n: p for n, p in spec.pools.items() if not p.is_gpu}
    scaling = replace(spec.scaling, fallback_replicas={
        n: c for n, c in spec.scaling.fallback_replicas.items() if n in pools})
    return replace(spec, pools=pools, scaling=scaling)


def cpu_only_feasible(spec: TTSServiceSpec) -> bool:
    return any(not p.is_gpu and capacity_per_replica(spec, p) > 0 for p in spec.pools.values())


def single_gpu_pool(spec: TTSServiceSpec) -> Pool | None:
    """The pool hpa, keda and static-gpu run on: the first on-demand GPU pool that meets
    the SLO (or, failing that, the first GPU pool that does)."""
    usable = [p for p in spec.pools.values() if p.is_gpu and capacity_per_replica(spec, p) > 0]
    on_demand = [p for p in usable if not p.is_spot]
    choices = on_demand or usable
    return choices[0] if choices else None


class StaticGPU(Policy):
    name = "static-gpu"
    interval = math.inf

    def __init__(self, spec: TTSServiceSpec, pool: Pool, peak_rate: float) -> None:
        per_replica = capacity_per_replica(spec, pool) * spec.scaling.target_utilization
        self.targets = {pool.name: max(1, math.ceil(peak_rate / per_replica - 1e-9))}

    def decide(self, view: View) -> dict[str, int]:
        return dict(self.targets)


class HPA(Policy):
    name = "hpa"
    interval = 15.0
    minimum = 1

    def __init__(self, spec: TTSServiceSpec, pool: Pool) -> None:
        self.pool = pool
        self.target = capacity_per_replica(spec, pool) * spec.scaling.target_utilization
        self.recommendations: list[tuple[float, int]] = []

    def replicas(self, now: float, metric: float, current: int) -> int:
        """HPA's algorithm for an External metric with an AverageValue target."""
        if current > 0 and abs(metric / (current * self.target) - 1.0) <= TOLERANCE:
            desired = current
        else:
            desired = math.ceil(metric / self.target - 1e-9)
        desired = min(max(desired, self.minimum), self.pool.max_replicas)
        self.recommendations = [(t, r) for t, r in self.recommendations
                                if t > now - STABILISATION_SECONDS]
        self.recommendations.append((now, desired))
        if desired < current:  # scale down only to the highest recent recommendation
            desired = min(current, max(r for _, r in self.recommendations))
        return desired

    def decide(self, view: View) -> dict[str, int]:
        current = view.pools[self.pool.name].current
        return {self.pool.name: self.replicas(view.now, view.short_rate, current)}


class KEDA(HPA):
    name = "keda"
    interval = 30.0
    cooldown = 300.0

    def __init__(self, spec: TTSServiceSpec, pool: Pool) -> None:
        super().__init__(spec, pool)
        self.spec = spec
        self.last_active = -math.inf
        self.floors = cron_floors(spec, pool)

    def decide(self, view: View) -> dict[str, int]:
        floor = self.cron_floor(view.epoch)
        current = view.pools[self.pool.name].current
        if view.short_rate > 0:
            self.last_active = view.now
        elif floor == 0 and view.now - self.last_active >= self.cooldown:
            self.recommendations.clear()
            return {self.pool.name: 0}
        if view.short_rate <= 0 and current == 0:
            return {self.pool.name: floor}
        return {self.pool.name: max(floor, self.replicas(view.now, view.short_rate, current))}

    def cron_floor(self, epoch: float) -> int:
        if not self.floors:
            return 0
        window = active_window(self.spec, epoch)
        return self.floors.get(window.name, 0) if window is not None else 0


def cron_floors(spec: TTSServiceSpec, pool: Pool) -> dict[str, int]:
    """KEDA cron triggers equivalent to the spec's windows: a window's GPU floors become
    that many replicas of the one pool, by capacity."""
    floors: dict[str, int] = {}
    per_replica = capacity_per_replica(spec, pool)
    for window in spec.schedule.windows:
        capacity = sum(
            (bounds.min_replicas or 0) * capacity_per_replica(spec, spec.pools[name])
            for name, bounds in window.pools.items()
            if name in spec.pools and spec.pools[name].is_gpu
        )
        if window.mode == "normal" and capacity > 0:
            floors[window.name] = math.ceil(capacity / per_replica - 1e-9)
    return floors


class Oracle(Policy):
    name = "oracle"
    interval = 60.0
    instant = True

    def __init__(self, spec: TTSServiceSpec, minute_rates: FloatArray) -> None:
        self.spec = spec
        self.minute_rates = minute_rates
        self._cache: dict[tuple[float, tuple[int, ...]], dict[str, int]] = {}

    def decide(self, view: View) -> dict[str, int]:
        minute = min(int(view.now // 60), self.minute_rates.size - 1)
        demand = float(self.minute_rates[minute]) / self.spec.scaling.target_utilization
        highs = evaluate_schedule(self.spec, view.epoch).bounds if self.spec.schedule.windows \
            else {p.name: _Ceiling(p.max_replicas) for p in self.spec.pools.values()}
        key = (round(demand, 6), tuple(highs[n].high for n in self.spec.pools))
        if key not in self._cache:
            options = [
                PoolOption(p.name, capacity_per_replica(self.spec, p), p.cost_per_hour, 0,
                           highs[p.name].high, p.is_spot)
                for p in self.spec.pools.values()
            ]
            plan = optimise(options, demand, self.spec.scaling.max_spot_fraction)
            self._cache[key] = dict(plan.counts)
        return dict(self._cache[key])


@dataclass(frozen=True)
class _Ceiling:
    high: int
