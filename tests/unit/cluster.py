"""A fake cluster at the engine's own seam (as Knative's fakePodCounter): replicas become
Ready one cold start after they are asked for, removals are immediate, and a spot
shortage keeps spot replicas Pending for ever. Used to drive `decide` tick by tick."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from elastic_tts.policy import Decision, Memory, Observation, PoolState, TTSServiceSpec, decide
from elastic_tts.policy.decide import capacity_per_replica, kept_out
from elastic_tts.policy.optimise import round_robin_capacity


@dataclass
class FakeCluster:
    spec: TTSServiceSpec
    spot_shortage: bool = False
    asked: dict[str, list[float]] = field(default_factory=dict)  # pool -> request times
    interrupted: dict[str, int] = field(default_factory=dict)

    def state(self, now: float, consume_events: bool = True) -> dict[str, PoolState]:
        """The pools as a controller sees them; interruptions are reported once, unless
        `consume_events` is False (a look that is not a controller's tick)."""
        states = {}
        for name, pool in self.spec.pools.items():
            times = self.asked.get(name, [])
            stuck = pool.is_spot and self.spot_shortage
            ready = 0 if stuck else sum(1 for t in times if now - t >= pool.cold_start_seconds)
            pending_times = [t for t in times if stuck or now - t < pool.cold_start_seconds]
            states[name] = PoolState(
                current=len(times), ready=ready, pending=len(pending_times),
                pending_seconds=max((now - t for t in pending_times), default=0.0),
                interrupted=(self.interrupted.pop(name, 0) if consume_events
                             else self.interrupted.get(name, 0)),
            )
        return states

    def apply(self, targets: Mapping[str, int], now: float) -> None:
        for name, target in targets.items():
            times = self.asked.setdefault(name, [])
            del times[target:]  # newest replicas go first, as a ReplicaSet does
            times.extend([now] * (target - len(times)))

    def interrupt(self, pool: str, count: int) -> None:
        times = self.asked.get(pool, [])
        del times[:count]
        self.interrupted[pool] = self.interrupted.get(pool, 0) + count

    def ready_capacity(self, now: float) -> float:
        states = self.state(now, consume_events=False)
        return serving_capacity(self.spec, {n: s.ready for n, s in states.items()})


def serving_capacity(spec: TTSServiceSpec, replicas: Mapping[str, int]) -> float:
    """What these replicas serve within the SLO as the dispatch spreads requests: weighted
    by capacity through the HTTPRoute; equally behind a plain Service, where the slowest
    replica in use sets every replica's pace. Either way a pool too slow to share a
    dispatch (`kept_out`) serves only while no other pool has replicas."""
    capacity = {n: capacity_per_replica(spec, p) for n, p in spec.pools.items()}
    out = kept_out(spec)
    if any(replicas.get(n, 0) and capacity[n] > 0 for n in spec.pools if n not in out):
        capacity = {n: 0.0 if n in out else c for n, c in capacity.items()}
    if spec.routing.enabled:
        return sum(replicas.get(n, 0) * capacity[n] for n in spec.pools)
    return round_robin_capacity(replicas, capacity)


@dataclass
class Tick:
    now: float
    observation: Observation
    decision: Decision


def drive(spec: TTSServiceSpec, cluster: FakeCluster, loads: list[float | None], start: float,
          interval: float | None = None, memory: Memory | None = None) -> list[Tick]:
    """One decide per load value, `interval` apart, applying each decision to the cluster.
    A load of None means Prometheus returned nothing."""
    step = interval if interval is not None else spec.scaling.interval_seconds
    memory = memory or Memory()
    ticks = []
    for index, load in enumerate(loads):
        now = start + index * step
        observation = Observation(load, load, cluster.state(now),
                                  metrics_available=load is not None)
        decision = decide(spec, observation, memory, now)
        cluster.apply(decision.replicas, now)
        memory = decision.memory
        ticks.append(Tick(now, observation, decision))
    return ticks
