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


def three_pools(**scaling: Any) -> dict[str, Any]:
    return {"pools": {"gpu": dict(GPU), "gpu-spot": dict(SPOT), "cpu": dict(CPU)},
            "scaling": scaling, "routing": dict(WEIGHTED)}


def build(data: dict[str, Any], **changes: Any) -> TTSServiceSpec:
    merged = {**data, **changes}
    return parse_spec(merged)
