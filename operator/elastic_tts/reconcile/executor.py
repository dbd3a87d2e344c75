"""The replica executor: the only code that changes a pool's replica count.

As in KEDA's scale_executor.go, rendering and status never touch replicas; every change
goes through `ReplicaExecutor.apply`, which patches the Deployment's scale subresource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from elastic_tts.reconcile.kinds import DEPLOYMENTS, pool_child_name
from elastic_tts.reconcile.ports import Cluster


@dataclass(frozen=True)
class ScaleChange:
    pool: str
    before: int
    after: int


class ReplicaExecutor:
    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def apply(self, namespace: str, service: str, targets: Mapping[str, int],
              current: Mapping[str, int], missing: set[str] | frozenset[str] = frozenset()
              ) -> list[ScaleChange]:
        """Scale every pool whose Deployment asks for something else than its target.
        Pools without a Deployment yet are skipped; the next tick sizes them."""
        changes = []
        for pool, target in targets.items():
            before = current.get(pool, 0)
            if pool in missing or before == target:
                continue
            self._cluster.patch(DEPLOYMENTS, namespace, pool_child_name(service, pool),
                                {"spec": {"replicas": target}}, subresource="scale")
            changes.append(ScaleChange(pool, before, target))
        return changes
