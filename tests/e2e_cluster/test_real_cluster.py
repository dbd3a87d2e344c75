"""The operator against a real cluster (kind or k3d): create a TTSService, see the
children with the right shape and a status, delete it, see the children garbage
collected. Skipped unless KUBECONFIG points at a cluster with crds/ttsservice.yaml
applied; run with `KUBECONFIG=~/.kube/config make test-all` (see README)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

REAL_KUBECONFIG = os.environ.get("KUBECONFIG")  # read at collection, before any fixture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REAL_KUBECONFIG, reason="no KUBECONFIG: no real cluster here"),
]


@pytest.fixture()
def namespace() -> Iterator[str]:
    from elastic_tts.adapters.kube import PykubeCluster
    from elastic_tts.reconcile.ports import Kind

    namespaces = Kind("v1", "namespaces", "Namespace", namespaced=False)
    cluster = PykubeCluster.from_env()
    name = f"elastic-tts-e2e-{uuid.uuid4().hex[:6]}"
    cluster.create(namespaces, None, {"metadata": {"name": name}})
    yield name
    cluster.delete(namespaces, None, name)


def test_create_shape_status_and_delete(namespace: str) -> None:
    from elastic_tts.adapters.kube import PykubeCluster
    from elastic_tts.reconcile.kinds import DEPLOYMENTS, PDBS, SERVICES, TTSSERVICES
    from elastic_tts_dev.specs import tts
    from tests.operator.cluster import OperatorThread, wait_for

    cluster = PykubeCluster.from_env()
    operator = OperatorThread(namespace).start()
    try:
        # Prometheus is not reachable here: the operator must hold and say so.
        cluster.create(TTSSERVICES, namespace, tts("e2e", "http://127.0.0.1:9"))
        gpu = wait_for("gpu Deployment", lambda: cluster.get(DEPLOYMENTS, namespace, "e2e-gpu"),
                       timeout=60)
        assert gpu["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
        wait_for("Service", lambda: cluster.get(SERVICES, namespace, "e2e"))
        wait_for("PDB", lambda: cluster.get(PDBS, namespace, "e2e"))
        status = wait_for("status", lambda: (cluster.get(TTSSERVICES, namespace, "e2e") or {})
                          .get("status", {}).get("conditions"), timeout=60)
        metrics = next(c for c in status if c["type"] == "MetricsAvailable")
        assert metrics["status"] == "False"
        cluster.delete(TTSSERVICES, namespace, "e2e")
        wait_for("children collected", lambda: cluster.get(DEPLOYMENTS, namespace, "e2e-gpu")
                 is None, timeout=120)
    finally:
        operator.stop()
