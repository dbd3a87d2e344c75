"""TTSService manifests for the operator tests: short windows, so nothing waits long."""

from __future__ import annotations

import copy
from typing import Any

GPU = {"accelerator": "gpu", "capacityType": "on-demand", "minReplicas": 0, "maxReplicas": 4,
       "costPerHour": 0.5, "throughput": 100, "coldStartSeconds": 1,
       "nodeSelector": {"node.kubernetes.io/instance-type": "g4dn.xlarge"},
       "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
SPOT = {"accelerator": "gpu", "capacityType": "spot", "minReplicas": 0, "maxReplicas": 4,
        "costPerHour": 0.2, "throughput": 100, "coldStartSeconds": 1, "fallbackTo": "gpu",
        "fallbackAfterSeconds": 2, "backoffSeconds": 4}
CPU = {"accelerator": "cpu", "minReplicas": 1, "maxReplicas": 6, "costPerHour": 0.08,
       "throughput": 20, "coldStartSeconds": 1}


def tts(name: str, prometheus_url: str, pools: dict[str, Any] | None = None,
        **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "engine": "espeak",
        "model": "cmn-latn-pinyin",
        "image": "ghcr.io/elastic-tts/worker:0.1.0",
        "pools": copy.deepcopy(pools if pools is not None else {"gpu": GPU, "cpu": CPU}),
        "scaling": {
            "prometheus": {"url": prometheus_url, "timeoutSeconds": 2},
            "intervalSeconds": 1,
            "scaleDownStabilizationSeconds": 5,
            "transitionGraceSeconds": 1,
        },
    }
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key].update(value)
        else:
            body[key] = value
    return {"apiVersion": "elastictts.io/v1alpha1", "kind": "TTSService",
            "metadata": {"name": name}, "spec": body}
