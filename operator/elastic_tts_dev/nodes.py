"""Fake nodes for kwok, labelled and tainted as a cloud labels its node pools.

The labels are the ones Karpenter puts on EKS nodes (``karpenter.sh/capacity-type``,
``karpenter.sh/nodepool``, ``karpenter.k8s.aws/instance-*``), the well-known Kubernetes
ones (instance type, zone, hostname, os, arch), and ``elastictts.io/pool``, the label
the README asks users to put on their node groups and the examples select on. GPU nodes
have ``nvidia.com/gpu`` capacity and the usual ``nvidia.com/gpu=true:NoSchedule`` taint
of a GPU node pool. kwok manages every node carrying ``kwok.x-k8s.io/node: fake``; a pool
with ``runtime="process"`` has nodes without it, which kwok leaves alone, so that a test's
own kubelet stand-in can run real processes for the pods bound there (tests/e2e).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KWOK_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
POOL_LABEL = "elastictts.io/pool"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"}
# What a spot interruption handler puts on a node before draining it (Karpenter v1).
DISRUPTED_TAINT = {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}
REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


@dataclass(frozen=True)
class InstanceType:
    name: str
    family: str
    cpu: int
    memory_gib: int
    gpus: int = 0
    gpu_name: str = ""


G4DN_12XLARGE = InstanceType("g4dn.12xlarge", "g4dn", 48, 192, gpus=4, gpu_name="t4")
G4DN_XLARGE = InstanceType("g4dn.xlarge", "g4dn", 4, 16, gpus=1, gpu_name="t4")
M5_4XLARGE = InstanceType("m5.4xlarge", "m5", 16, 64)


@dataclass(frozen=True)
class NodePool:
    """`count` nodes of one instance type, on-demand or spot, under one pool label."""

    name: str
    instance: InstanceType
    count: int = 2
    capacity_type: str = "on-demand"  # or "spot", as karpenter.sh/capacity-type says
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Mapping[str, str], ...] = ()
    max_pods: int = 110  # the kubelet's default
    runtime: str = "kwok"  # or "process": kwok leaves the nodes to another kubelet

    def __post_init__(self) -> None:
        if self.runtime not in ("kwok", "process"):
            raise ValueError(f"NodePool {self.name}: runtime must be kwok or process, "
                             f"got {self.runtime!r}")

    @property
    def gpu(self) -> bool:
        return self.instance.gpus > 0

    def selector(self) -> dict[str, str]:
        """The nodeSelector of a workload meant for this pool."""
        return {POOL_LABEL: self.name}

    def tolerations(self) -> list[dict[str, str]]:
        """The tolerations a workload needs to land on this pool's nodes."""
        return [{"key": t["key"], "operator": "Exists", "effect": t["effect"]}
                for t in self.all_taints()]

    def all_taints(self) -> list[dict[str, str]]:
        return ([dict(GPU_TAINT)] if self.gpu else []) + [dict(t) for t in self.taints]

    def node(self, name: str, index: int = 0) -> dict[str, Any]:
        """The Node object, status included (kwok keeps it Ready from then on)."""
        kind = self.instance
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": kind.name,
            "topology.kubernetes.io/region": REGION,
            "topology.kubernetes.io/zone": ZONES[index % len(ZONES)],
            CAPACITY_TYPE_LABEL: self.capacity_type,
            "karpenter.sh/nodepool": self.name,
            "karpenter.k8s.aws/instance-family": kind.family,
            "karpenter.k8s.aws/instance-cpu": str(kind.cpu),
            POOL_LABEL: self.name,
            "type": self.runtime,
        }
        if self.gpu:
            labels.update({"karpenter.k8s.aws/instance-gpu-count": str(kind.gpus),
                           "karpenter.k8s.aws/instance-gpu-name": kind.gpu_name,
                           "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia",
                           "nvidia.com/gpu.present": "true"})
        labels.update(self.labels)
        annotations = {"node.alpha.kubernetes.io/ttl": "0"}
        if self.runtime == "kwok":
            annotations[KWOK_ANNOTATION[0]] = KWOK_ANNOTATION[1]
        resources = {"cpu": str(kind.cpu), "memory": f"{kind.memory_gib}Gi",
                     "pods": str(self.max_pods),
                     "ephemeral-storage": "100Gi"}
        if self.gpu:
            resources[GPU_RESOURCE] = str(kind.gpus)
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": {"taints": self.all_taints()},
            "status": {"capacity": resources, "allocatable": resources},
        }

    def node_names(self, count: int | None = None, unique: bool = False) -> list[str]:
        if unique:
            return [f"{self.name}-{secrets.token_hex(3)}" for _ in range(count or self.count)]
        return [f"{self.name}-{i}" for i in range(count if count is not None else self.count)]


# The default layout: GPU on-demand, GPU spot and CPU, three nodes each.
GPU_ON_DEMAND = NodePool("gpu", G4DN_12XLARGE, count=3)
GPU_SPOT = NodePool("gpu-spot", G4DN_12XLARGE, count=3, capacity_type="spot")
CPU_ON_DEMAND = NodePool("cpu", M5_4XLARGE, count=3)
DEFAULT_POOLS = (GPU_ON_DEMAND, GPU_SPOT, CPU_ON_DEMAND)
