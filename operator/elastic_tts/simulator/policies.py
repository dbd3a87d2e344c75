"""The policies compared in one simulator. Each sees the same Prometheus-like view.

- elastic-tts: the real `decide` from the decision engine, memory carried between ticks.
- cpu-only: the same engine restricted to the CPU pools (only when they meet the SLO).
- the baselines in `baselines` (static-gpu, hpa, hpa-cpu, keda, keda-spot,
  keda+karpenter), each documented with the product behaviour it models;
- the oracle variants in `bounds`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, replace

from elastic_tts.policy import Memory, Observation, PoolState, decide
from elastic_tts.policy.decide import capacity_per_replica
from elastic_tts.policy.spec import TTSServiceSpec


@dataclass(frozen=True)
class View:
    """What a controller knows at one tick (rates in the spec's metric unit)."""

    now: float  # seconds from the start of the trace
    epoch: float  # the same instant as POSIX time
    short_rate: float  # ~1 minute rate
    long_rate: float  # ~5 minute rate
    pools: Mapping[str, PoolState]
    burst_rate: float | None = None  # the newest scrape interval's rate
    requests_rate: float | None = None  # requests/s over the long window
    backlog_characters: float | None = None  # the workers' backlog gauge, summed
    refused_share: float | None = None  # refusals / offered requests (long window)


class Policy(ABC):
    """One controller the simulator compares: every `interval` seconds it sees a `View`
    and returns the replicas it wants per pool."""

    name = "policy"
    interval = 15.0
    instant = False  # replicas Ready at once, never short of spot (the oracle only)
    # One Deployment over (spot pool, on-demand pool): Karpenter places its pods.
    together: tuple[str, str] | None = None

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
        observation = Observation(
            view.short_rate, view.long_rate, view.pools, burst_rate=view.burst_rate,
            requests_rate=view.requests_rate, backlog_characters=view.backlog_characters,
            refused_share=view.refused_share)
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
