"""TTSService manifests for the operator tests: short windows, so nothing waits long."""

from __future__ import annotations

import copy
from typing import Any

from elastic_tts_dev.nodes import CPU_ON_DEMAND, GPU_ON_DEMAND, GPU_SPOT, NodePool

# Each pool lands on the local cluster's node pool of the same kind (elastic_tts_dev.nodes).
GPU = {"accelerator": "gpu", "capacityType": "on-demand", "minReplicas": 0, "maxReplicas": 4,
       "costPerHour": 0.5, "throughput": 100, "coldStartSeconds": 1,
       "nodeSelector": GPU_ON_DEMAND.selector(), "tolerations": GPU_ON_DEMAND.tolerations()}
SPOT = {"accelerator": "gpu", "capacityType": "spot", "minReplicas": 0, "maxReplicas": 4,
        "costPerHour": 0.2, "throughput": 100, "coldStartSeconds": 1, "fallbackTo": "gpu",
        "fallbackAfterSeconds": 2, "backoffSeconds": 4,
        "nodeSelector": GPU_SPOT.selector(), "tolerations": GPU_SPOT.tolerations()}
CPU = {"accelerator": "cpu", "minReplicas": 1, "maxReplicas": 6, "costPerHour": 0.08,
       "throughput": 20, "coldStartSeconds": 1, "nodeSelector": CPU_ON_DEMAND.selector()}


def on_nodes(pool: dict[str, Any], nodes: NodePool) -> dict[str, Any]:
    """`pool` placed on the nodes of `nodes` (a test's own node pool)."""
    return {**pool, "nodeSelector": nodes.selector(), "tolerations": nodes.tolerations()}


def tts(name: str, prometheus_url: str, pools: dict[str, Any] | None = None,
        **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "engine": "espeak",
        "model": "cmn-latn-pinyin",
        "image": "ghcr.io/elastic-tts/worker-espeak:0.1.0",
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
