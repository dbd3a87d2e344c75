"""What a platform engineer runs today, modelled on each product's documented behaviour.

Every baseline scales one Deployment behind one plain Service (kube-proxy picks an
endpoint at random per connection), reads the same Prometheus the engine reads, and
targets the same load per replica as elastic-tts: `throughput x targetUtilization`
characters/s (an External metric with an AverageValue target). The comparison is about
how each scales, not how hard it runs its replicas.

HPA (Kubernetes docs, "Horizontal Pod Autoscaling", sections *Algorithm details* and
*Default Behavior*; kubernetes/kubernetes pkg/controller/podautoscaler
`GetExternalPerPodMetricReplicas` and `stabilizeRecommendationWithBehaviors`):
- every 15 s (`--horizontal-pod-autoscaler-sync-period`) the replica calculator takes
  usageRatio = metric / (target x statusReplicas); within the 0.1 tolerance it keeps
  statusReplicas, else proposes ceil(metric / target);
- default behaviour: scale-up window 0 and at most max(100 %, 4 pods) more per 15 s;
  scale-down to the highest recommendation of the last 300 s, 100 % per 15 s;
- minReplicas 1 (an HPA never scales to zero by itself).

KEDA (keda.sh docs, ScaledObject specification: `pollingInterval`, `cooldownPeriod`,
`minReplicaCount`; Concepts, *Scaling Deployments*: "Caching Metrics" and "Activating and
Scaling thresholds"):
- KEDA creates the HPA above; the HPA asks KEDA's metrics server at its 15 s sync, and
  the metrics server queries Prometheus live (`useCachedMetrics` defaults to false);
- the KEDA operator polls every `pollingInterval` (30 s) only for activation: 0 -> 1 when
  a trigger is active (metric > `activationThreshold`, default 0), and 1 -> 0 once no
  trigger has been active for `cooldownPeriod` (300 s); `cooldownPeriod` applies only to
  scaling to zero; `minReplicaCount` defaults to 0;
- `keda` adds cron triggers equivalent to the spec's windows (a cron trigger's
  desiredReplicas is a floor while its window is open, and keeps the scaler active).

Karpenter (karpenter.sh docs, Concepts, *NodePools*, "Capacity Type": "Karpenter
prioritizes Spot offerings if the NodePool allows Spot and on-demand instances ... If
there are no other possible offerings available for Spot, Karpenter will attempt to
provision on-demand instances, generally within milliseconds"; no return: a node that
fell back to on-demand is neither empty nor underutilised while its GPU pod runs, so
consolidation leaves it (aws/karpenter-provider-aws issues #3480 and #7832, "After a
fallback to on-demand Karpenter doesn't replace back to spot")):
- `keda+karpenter`: one GPU Deployment scaled by KEDA (as above, on-demand GPU pricing
  model for its pods' nodes), each new pod on a spot node when spot has capacity and on
  an on-demand node at once when it has not; an interrupted pod's replacement is placed
  the same way; on-demand pods stay until a scale-down removes them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from elastic_tts.policy.decide import capacity_per_replica
from elastic_tts.policy.schedule import active_window
from elastic_tts.policy.spec import Pool, TTSServiceSpec
from elastic_tts.simulator.policies import Policy, View

SYNC_SECONDS = 15.0  # --horizontal-pod-autoscaler-sync-period
TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
DOWN_WINDOW = 300.0  # behavior.scaleDown.stabilizationWindowSeconds
UP_PODS, UP_PERCENT = 4, 100  # behavior.scaleUp policies per 15 s, selectPolicy Max
KEDA_POLLING = 30.0  # ScaledObject pollingInterval
KEDA_COOLDOWN = 300.0  # ScaledObject cooldownPeriod
KEDA_ACTIVATION = 0.0  # activationThreshold


class HPAController:
    """The HPA's arithmetic for one External AverageValue metric, with default behavior."""

    def __init__(self, target: float, minimum: int, maximum: int) -> None:
        self.target = target
        self.minimum = minimum
        self.maximum = maximum
        self.recommendations: list[tuple[float, int]] = []

    def proposal(self, metric: float, current: int) -> int:
        if current > 0 and abs(metric / (self.target * current) - 1.0) <= TOLERANCE:
            return current
        return math.ceil(metric / self.target - 1e-9)

    def step(self, now: float, metric: float, current: int, floor: int = 0) -> int:
        desired = max(self.proposal(metric, current), floor)
        if now <= 0 and current == 0:
            # The simulator's warm start: as if this load had been running, the HPA has
            # long converged on it, so no rate limit applies to the first decision.
            self.recommendations = [(now, desired)]
            return min(max(desired, self.minimum), self.maximum)
        self.recommendations = [(t, r) for t, r in self.recommendations
                                if t > now - DOWN_WINDOW]
        self.recommendations.append((now, desired))
        down = max(r for _, r in self.recommendations)
        result = min(max(current, desired), down)  # up window 0; down: highest in 300 s
        limit = max(current * (100 + UP_PERCENT) // 100, current + UP_PODS)
        return min(max(min(result, limit), self.minimum), self.maximum)


class StaticGPU(Policy):
    """On-demand GPU sized once for the trace's busiest minute at the target utilisation
    (what a team without an autoscaler provisions)."""

    name = "static-gpu"
    interval = math.inf

    def __init__(self, spec: TTSServiceSpec, pool: Pool, peak_rate: float) -> None:
        per_replica = capacity_per_replica(spec, pool) * spec.scaling.target_utilization
        self.targets = {pool.name: max(1, math.ceil(peak_rate / per_replica - 1e-9))}

    def decide(self, view: View) -> dict[str, int]:
        return dict(self.targets)


class HPA(Policy):
    """An HPA on one pool's Deployment, on the load metric through a Prometheus adapter."""

    interval = SYNC_SECONDS

    def __init__(self, spec: TTSServiceSpec, pool: Pool, name: str = "hpa") -> None:
        self.name = name
        self.pool = pool
        target = capacity_per_replica(spec, pool) * spec.scaling.target_utilization
        self.hpa = HPAController(target, max(1, pool.min_replicas), pool.max_replicas)

    def decide(self, view: View) -> dict[str, int]:
        current = view.pools[self.pool.name].current
        return {self.pool.name: self.hpa.step(view.now, view.short_rate, current)}


class KEDA(Policy):
    """A ScaledObject with a Prometheus trigger (and cron triggers for the spec's windows
    when `cron` is set) on one Deployment. With `together` the Deployment's pods are
    placed by Karpenter over (spot pool, on-demand pool)."""

    interval = SYNC_SECONDS

    def __init__(self, spec: TTSServiceSpec, pool: Pool, name: str = "keda",
                 cron: bool = True, together: tuple[str, str] | None = None) -> None:
        self.name = name
        self.spec = spec
        self.pool = pool
        self.together = together
        target = capacity_per_replica(spec, pool) * spec.scaling.target_utilization
        self.hpa = HPAController(target, 1, pool.max_replicas)
        self.floors = cron_floors(spec, pool) if cron else {}
        self.last_active = 0.0
        self.active = True

    def _current(self, pools: Mapping[str, object]) -> int:
        names = self.together or (self.pool.name,)
        return sum(getattr(pools[n], "current", 0) for n in names)

    def decide(self, view: View) -> dict[str, int]:
        floor = self.cron_floor(view.epoch)
        current = self._current(view.pools)
        if view.now % KEDA_POLLING < SYNC_SECONDS:  # the operator's activation poll
            self.active = view.short_rate > KEDA_ACTIVATION or floor > 0
            if self.active:
                self.last_active = view.now
        if current == 0 and view.now <= 0 and self.active:  # warm start: already scaled
            wanted = self.hpa.step(view.now, view.short_rate, current, floor)
        elif current == 0:
            wanted = 1 if self.active else 0
        elif not self.active and view.now - self.last_active >= KEDA_COOLDOWN:
            self.hpa.recommendations.clear()
            wanted = 0
        else:
            wanted = self.hpa.step(view.now, view.short_rate, current, floor)
        return {self.pool.name: wanted}

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


def first_pool(spec: TTSServiceSpec, *, gpu: bool, spot: bool) -> Pool | None:
    """The first pool of that kind that meets the SLO."""
    for pool in spec.pools.values():
        if pool.is_gpu == gpu and pool.is_spot == spot and capacity_per_replica(spec, pool):
            return pool
    return None


def build_baselines(spec: TTSServiceSpec, peak_rate: float
                    ) -> tuple[list[Policy], dict[str, str]]:
    """The baselines this spec allows, and why any other was left out."""
    policies: list[Policy] = []
    omitted: dict[str, str] = {}
    gpu = first_pool(spec, gpu=True, spot=False)
    spot = first_pool(spec, gpu=True, spot=True)
    cpu = first_pool(spec, gpu=False, spot=False)
    if gpu is None:
        for name in ("static-gpu", "hpa", "keda"):
            omitted[name] = "the spec has no on-demand GPU pool that meets the SLO"
    else:
        policies += [StaticGPU(spec, gpu, peak_rate), HPA(spec, gpu), KEDA(spec, gpu)]
    if gpu is not None and spot is not None:
        policies.append(KEDA(spec, spot, "keda+karpenter", together=(spot.name, gpu.name)))
    else:
        omitted["keda+karpenter"] = "needs a GPU spot pool and an on-demand GPU pool"
    if spot is not None:
        policies.append(KEDA(spec, spot, "keda-spot", cron=bool(spec.schedule.windows)))
    else:
        omitted["keda-spot"] = "the spec has no GPU spot pool that meets the SLO"
    if cpu is not None:
        policies.append(HPA(spec, cpu, "hpa-cpu"))
    else:
        omitted["hpa-cpu"] = "the spec has no CPU pool that meets the SLO"
    return policies, omitted
