"""The pools simulated when no --spec is given, priced from the seeds' figures.

- GPU on-demand: $0.526/h (a T4 node), 1.2 s per 100 characters -> 83.3 chars/s.
- GPU spot: 40 % of on-demand, same speed, falls back to on-demand.
- CPU: 1/6 of on-demand GPU, 3.8 s per 100 characters -> 26.3 chars/s.
- Cold start: 120 s GPU, 30 s CPU. Latency SLO: 5 s per 100 characters.

Ceilings are the spec's largest (1000 replicas), high enough for the benchmark traces
(the Azure conversation trace at x4 peaks near 7,000 chars/s) that no GPU policy is
capped by them, even one tuned down to a 10 % target utilisation on a single pool. One
CPU replica stays warm, as an operator would keep one, so a quiet minute never leaves
requests waiting for a cold start. Routing is enabled (capacity-weighted HTTPRoute),
which is the default dispatch when a spec enables it.
"""

from __future__ import annotations

from elastic_tts.policy.spec import TTSServiceSpec, parse_spec

GPU_PRICE = 0.526
GPU_THROUGHPUT = 100.0 / 1.2
CPU_THROUGHPUT = 100.0 / 3.8
DEFAULT_TARGET_UTILIZATION = 0.7

DEFAULT_SPEC = {
    "pools": {
        "gpu": {
            "accelerator": "gpu", "capacityType": "on-demand",
            "minReplicas": 0, "maxReplicas": 1000,
            "costPerHour": GPU_PRICE, "throughput": round(GPU_THROUGHPUT, 2),
            "coldStartSeconds": 120,
        },
        "gpu-spot": {
            "accelerator": "gpu", "capacityType": "spot",
            "minReplicas": 0, "maxReplicas": 1000,
            "costPerHour": round(GPU_PRICE * 0.4, 4), "throughput": round(GPU_THROUGHPUT, 2),
            "coldStartSeconds": 120, "fallbackTo": "gpu", "fallbackAfterSeconds": 120,
        },
        "cpu": {
            "accelerator": "cpu", "capacityType": "on-demand",
            "minReplicas": 1, "maxReplicas": 1000,
            "costPerHour": round(GPU_PRICE / 6, 4), "throughput": round(CPU_THROUGHPUT, 2),
            "coldStartSeconds": 30,
        },
    },
    "scaling": {
        "metric": "characters",
        "targetUtilization": DEFAULT_TARGET_UTILIZATION,
        "latencySLOSeconds": 5,
        "intervalSeconds": 15,
    },
    "routing": {"enabled": True, "gatewayRef": {"name": "simulated-gateway"}},
}


def default_spec() -> TTSServiceSpec:
    return parse_spec(DEFAULT_SPEC, "default pools")
