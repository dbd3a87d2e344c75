"""The TTSService the e2e loop runs: three pools with real, small capacities.

Every replica serves 40 characters a second (the worker's espeak behind
`espeak_at_speed.sh`), so 6 replicas at most, 2 per pool, which two shared cores carry.
The speeds are equal on purpose: behind a plain round-robin Service the slowest Ready
replica sets every replica's pace, and the engine plans for exactly that, so a slow CPU
pool would make the GPU pools' speed moot. Cost alone then orders the pools: cpu, then
spot (up to maxSpotFraction of capacity), then on-demand gpu.

Short windows (tick 2 s, scale-down window 10 s, rate windows 4 s / 8 s) keep each
scenario within a minute or two; the cold start is the one measured here (8 s).

Each scenario's pools land on node pools of its own (`node_pools`): runtime="process"
pools, whose pods the tier's kubelet runs as real workers (tests/e2e/kubelet.py). The
instance types are the cloud's: a g4dn.12xlarge (4 GPUs) for each GPU pool, an
m5.4xlarge for CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elastic_tts_dev.nodes import G4DN_12XLARGE, M5_4XLARGE, NodePool
from elastic_tts_dev.specs import on_nodes, tts

SPEED = 40  # characters per second per replica, every pool
INTERVAL = 2.0
DOWN_WINDOW = 10.0
TARGET_UTILIZATION = 0.7
# The SLO per 100 characters. The engine starts its utilisation from a queueing estimate
# for a 100-character request (policy/sizing.py: the utilisation at which about 2 % are
# refused), capped at targetUtilization. At 2.5 s per 100 characters a 3 s SLO leaves a
# request 0.2 service times of queue, which puts that estimate at its 10 % floor: every
# pool at its ceiling at any load, and nothing for these scenarios to watch. 35 s leaves
# 13 service times, where the estimate reaches 0.7, so the engine sizes at
# TARGET_UTILIZATION and these scenarios test the loop, not the queueing estimate (which
# tests/unit and the simulator's benchmark cover). The e2e's 20-character texts are served
# in 0.5 s: no request comes near either SLO.
LATENCY_SLO = 35
# Seconds from scheduling a replica to Ready, as measured here: the kubelet starts the
# worker (gunicorn, espeak) in about 5.5 s on two loaded cores, plus the scheduler, the
# probe and the status write. The engine holds the capacity it lets go for this long
# (plus the transition grace) while new replicas start; a figure below the real one
# makes it let go before the new replicas serve, which the scenarios would catch.
COLD_START = 8

POOLS: dict[str, dict[str, Any]] = {
    "cpu": {"accelerator": "cpu", "minReplicas": 1, "maxReplicas": 2, "costPerHour": 0.08,
            "throughput": SPEED, "coldStartSeconds": COLD_START},
    "spot": {"accelerator": "gpu", "capacityType": "spot", "minReplicas": 0, "maxReplicas": 2,
             "costPerHour": 0.2, "throughput": SPEED, "coldStartSeconds": COLD_START,
             "fallbackTo": "gpu", "fallbackAfterSeconds": 4, "backoffSeconds": 12},
    "gpu": {"accelerator": "gpu", "capacityType": "on-demand", "minReplicas": 0,
            "maxReplicas": 2, "costPerHour": 0.5, "throughput": SPEED,
            "coldStartSeconds": COLD_START},
}


def node_pools(prefix: str) -> dict[str, NodePool]:
    """A node pool per TTSService pool, named after `prefix` (no nodes yet)."""
    return {
        "cpu": NodePool(f"{prefix}-cpu", M5_4XLARGE, count=0, runtime="process"),
        "spot": NodePool(f"{prefix}-spot", G4DN_12XLARGE, count=0, capacity_type="spot",
                         runtime="process"),
        "gpu": NodePool(f"{prefix}-gpu", G4DN_12XLARGE, count=0, runtime="process"),
    }


def e2e_service(name: str, prometheus_url: str, nodes: Mapping[str, NodePool] | None = None,
                **overrides: Any) -> dict[str, Any]:
    scaling = {"intervalSeconds": INTERVAL, "scaleDownStabilizationSeconds": DOWN_WINDOW,
               "transitionGraceSeconds": 2, "targetUtilization": TARGET_UTILIZATION,
               "latencySLOSeconds": LATENCY_SLO}
    scaling.update(overrides.pop("scaling", {}))
    pools = {key: on_nodes(pool, nodes[key]) if nodes else dict(pool)
             for key, pool in POOLS.items()}
    return tts(name, prometheus_url, pools, scaling=scaling, **overrides)


def capacity_needed(chars_per_second: float) -> float:
    """The capacity (chars/s) the engine provisions for an offered load."""
    return chars_per_second / TARGET_UTILIZATION
