"""The workers' admission signals (ADMISSION.md) reach the engine in a real cluster: the
operator (`elastic-tts run` under the chart's ServiceAccount, on the local cluster) reads
the refusals and the backlog from a real Prometheus scraping the exporter, feeds them to
the engine, sizes for them, and records what it saw in status.engine.observation."""

from __future__ import annotations

from typing import Any

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import TTSSERVICES
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import tts
from tests.cluster.fixtures import OperatorFactory
from tests.operator.cluster import wait_for
from tests.operator.test_operator_lifecycle import replicas, status_of


def observed(admin: PykubeCluster, namespace: str, name: str) -> dict[str, Any]:
    return dict((status_of(admin, namespace, name).get("engine") or {})
                .get("observation") or {})


def reason(admin: PykubeCluster, namespace: str, name: str) -> str:
    return str((status_of(admin, namespace, name).get("lastDecision") or {})
               .get("reason", ""))


def test_refusals_and_backlog_from_prometheus_drive_the_decision(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter) -> None:
    # 60 chars/s in 0.6 requests/s, a quarter of them refused (0.15 refusals/s).
    exporter.set_load("adm", "gpu", 60, namespace=namespace)
    exporter.set_admission("adm", "gpu", refusals_per_second=0.15, namespace=namespace)
    start_operator(namespace)
    admin.create(TTSSERVICES, namespace, tts("adm", prometheus.url))

    def settled() -> dict[str, Any] | None:
        # Until the 8 s window holds only fed samples, Prometheus's rates run low.
        seen = observed(admin, namespace, "adm")
        share, offered = seen.get("refusedShare"), seen.get("requestsRate") or 0.0
        return seen if share is not None and 0.15 <= share <= 0.35 and offered > 0.45 else None

    seen = wait_for("the refused share and the offered requests in status", settled,
                    timeout=40)
    assert seen["burstRate"] > 0 and seen["backlogCharacters"] == 0, seen
    # Refusals observed: the engine sizes below targetUtilization and says why.
    wait_for("sizing for the refusals", lambda: "workers refuse" in reason(
        admin, namespace, "adm"), timeout=20)

    # A backlog of 2,000 characters, beyond what the Ready slots hold, is demand that
    # must drain within the SLO: the GPU pool goes to its ceiling (4).
    exporter.set_admission("adm", "gpu", refusals_per_second=0.15, backlog_characters=2000,
                           namespace=namespace)
    wait_for("the backlog gauge's mean over the burst window", lambda: observed(
        admin, namespace, "adm").get("backlogCharacters") == 2000, timeout=30)
    assert "backlog and refusals" in reason(admin, namespace, "adm")
    wait_for("gpu at its ceiling", lambda: replicas(admin, namespace, "adm-gpu") == 4,
             timeout=30)
