"""A fake cluster at the engine's own seam (as Knative's fakePodCounter): replicas become
Ready one cold start after they are asked for, removals are immediate, and a spot
shortage keeps spot replicas Pending for ever. Used to drive `decide` tick by tick."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from elastic_tts.policy import Decision, Memory, Observation, PoolState, TTSServiceSpec, decide
from elastic_tts.policy.decide import capacity_per_replica


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
        return sum(states[n].ready * capacity_per_replica(self.spec, p)
                   for n, p in self.spec.pools.items())


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
