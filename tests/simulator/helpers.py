"""Small specs, traces and a scripted policy for hand-computed simulator cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from elastic_tts.policy import parse_spec
from elastic_tts.policy.spec import TTSServiceSpec
from elastic_tts.simulator.cluster import SERVICE, Cluster, SpotConditions, WorkerModel
from elastic_tts.simulator.engine import slo_limits
from elastic_tts.simulator.policies import Policy, View
from elastic_tts.simulator.trace import Trace, make_trace

START = 1_795_392_000.0  # 2026-11-23T00:00:00Z, a Monday


def spec_of(pools: dict[str, dict[str, Any]], **scaling: Any) -> TTSServiceSpec:
    return parse_spec({"pools": pools, "scaling": scaling})


def pool(accelerator: str = "gpu", *, price: float = 3.6, throughput: float = 100.0,
         cold: float = 30.0, **extra: Any) -> dict[str, Any]:
    """$3.6/h is $0.001 per replica-second, which keeps hand arithmetic easy."""
    return {"accelerator": accelerator, "costPerHour": price, "throughput": throughput,
            "coldStartSeconds": cold, "maxReplicas": 50, **extra}


def trace_of(times: list[float], chars: list[int] | int = 100, name: str = "test") -> Trace:
    sizes = chars if isinstance(chars, list) else [chars] * len(times)
    return make_trace(name, np.asarray(times, dtype=np.float64),
                      np.asarray(sizes, dtype=np.int64), START)


def steady_trace(rate_per_second: float, seconds: int, chars: int = 100) -> Trace:
    """Evenly spaced requests: `rate_per_second` of them every second."""
    count = int(rate_per_second * seconds)
    return trace_of([i / rate_per_second for i in range(count)], chars)


class Scripted(Policy):
    """A fake at our own seam: targets as a function of the step's time."""

    name = "scripted"

    def __init__(self, plan: Callable[[float], dict[str, int]], interval: float = 1.0) -> None:
        self.plan = plan
        self.interval = interval
        self.views: list[View] = []

    def decide(self, view: View) -> dict[str, int]:
        self.views.append(view)
        return self.plan(view.now)


def cluster_of(spec: TTSServiceSpec, trace: Trace, dispatch: str = SERVICE,
               spot: SpotConditions | None = None, seed: int = 0, instant: bool = False,
               worker: WorkerModel | None = None) -> Cluster:
    return Cluster(spec.pools, trace.times, trace.chars,
                   slo_limits(spec, trace.chars.astype(np.float64)), dispatch,
                   spot or SpotConditions(interruptions_per_hour=0.0), seed, instant=instant,
                   worker=worker)


def drive(cluster: Cluster, trace: Trace, seconds: int) -> None:
    """Step a cluster by hand: events, then this second's attempts (arrivals, retries)."""
    bounds = np.searchsorted(trace.times, np.arange(seconds + 1, dtype=np.float64))
    for second in range(seconds):
        cluster.run_events(second + 1)
        cluster.send(int(bounds[second]), int(bounds[second + 1]), second)
