"""The TTSService the e2e loop runs: three pools with real, small capacities.

Every replica serves 40 characters a second (the worker's espeak behind
`espeak_at_speed.sh`), so 6 replicas at most, 2 per pool, which two shared cores carry.
The speeds are equal on purpose: behind a plain round-robin Service the slowest Ready
replica sets every replica's pace, and the engine plans for exactly that, so a slow CPU
pool would make the GPU pools' speed moot. Cost alone then orders the pools: cpu, then
spot (up to maxSpotFraction of capacity), then on-demand gpu.

Short windows (tick 2 s, scale-down window 10 s, rate windows 4 s / 8 s) keep each
scenario within a minute or two.
"""

from __future__ import annotations

from typing import Any

from elastic_tts_dev.specs import tts

SPEED = 40  # characters per second per replica, every pool
INTERVAL = 2.0
DOWN_WINDOW = 10.0
TARGET_UTILIZATION = 0.7

POOLS: dict[str, dict[str, Any]] = {
    "cpu": {"accelerator": "cpu", "minReplicas": 1, "maxReplicas": 2, "costPerHour": 0.08,
            "throughput": SPEED, "coldStartSeconds": 2},
    "spot": {"accelerator": "gpu", "capacityType": "spot", "minReplicas": 0, "maxReplicas": 2,
             "costPerHour": 0.2, "throughput": SPEED, "coldStartSeconds": 2,
             "fallbackTo": "gpu", "fallbackAfterSeconds": 4, "backoffSeconds": 12},
    "gpu": {"accelerator": "gpu", "capacityType": "on-demand", "minReplicas": 0,
            "maxReplicas": 2, "costPerHour": 0.5, "throughput": SPEED, "coldStartSeconds": 2},
}


def e2e_service(name: str, prometheus_url: str, **overrides: Any) -> dict[str, Any]:
    scaling = {"intervalSeconds": INTERVAL, "scaleDownStabilizationSeconds": DOWN_WINDOW,
               "transitionGraceSeconds": 2, "targetUtilization": TARGET_UTILIZATION,
               "latencySLOSeconds": 3}
    scaling.update(overrides.pop("scaling", {}))
    return tts(name, prometheus_url, POOLS, scaling=scaling, **overrides)


def capacity_needed(chars_per_second: float) -> float:
    """The capacity (chars/s) the engine provisions for an offered load."""
    return chars_per_second / TARGET_UTILIZATION
