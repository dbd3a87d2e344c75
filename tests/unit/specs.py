"""Spec builders shared by the policy tests: plain dicts, parsed by the real model."""

from __future__ import annotations

from typing import Any

from elastic_tts.policy import TTSServiceSpec, parse_spec

GPU = {"accelerator": "gpu", "capacityType": "on-demand", "costPerHour": 0.526,
       "throughput": 83.3, "minReplicas": 0, "maxReplicas": 8, "coldStartSeconds": 120}
SPOT = {"accelerator": "gpu", "capacityType": "spot", "costPerHour": 0.21, "throughput": 83.3,
        "minReplicas": 0, "maxReplicas": 8, "coldStartSeconds": 120, "fallbackTo": "gpu",
        "fallbackAfterSeconds": 120, "backoffSeconds": 300}
CPU = {"accelerator": "cpu", "capacityType": "on-demand", "costPerHour": 0.0877,
       "throughput": 26.3, "minReplicas": 0, "maxReplicas": 6, "coldStartSeconds": 30}


# Capacity-weighted dispatch (an HTTPRoute), so mixes of GPU and CPU count in full.
WEIGHTED = {"enabled": True, "gatewayRef": {"name": "gw"}}


# A 10 s SLO leaves the CPU pool (3.8 s per 100 characters) 1.6 service times of queue,
# enough to share a dispatch with GPU (decide.MIN_SLACK); at 5 s it is kept out of mixes.
MIXABLE_SLO = 10.0


def three_pools(**scaling: Any) -> dict[str, Any]:
    return {"pools": {"gpu": dict(GPU), "gpu-spot": dict(SPOT), "cpu": dict(CPU)},
            "scaling": {"latencySLOSeconds": MIXABLE_SLO, **scaling},
            "routing": dict(WEIGHTED)}


def build(data: dict[str, Any], **changes: Any) -> TTSServiceSpec:
    merged = {**data, **changes}
    return parse_spec(merged)
