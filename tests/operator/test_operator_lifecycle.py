"""The operator end to end, in process, against KMock over HTTP and a real Prometheus:
children, scaling with load, spec changes, invalid specs, routing, pause and delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import (
    DEPLOYMENTS,
    HTTPROUTES,
    PDBS,
    SERVICES,
    TTSSERVICES,
)
from elastic_tts.reconcile.ports import Kind
from tests.operator.cluster import FakeKubelet, OperatorThread, wait_for
from tests.operator.prom import Exporter, Prometheus
from tests.operator.specs import tts

EVENTS = Kind("v1", "events", "Event")


@pytest.fixture(scope="module")
def operator(api_server: Any, namespace: str, kubelet: FakeKubelet,
             prometheus: Prometheus) -> Iterator[OperatorThread]:
    running = OperatorThread(namespace).start()
    yield running
    running.stop()


def replicas(cluster: PykubeCluster, ns: str, name: str) -> int | None:
    deployment = cluster.get(DEPLOYMENTS, ns, name)
    return None if deployment is None else int(deployment["spec"].get("replicas") or 0)


def condition(cluster: PykubeCluster, ns: str, name: str, kind: str) -> dict[str, Any] | None:
    obj = cluster.get(TTSSERVICES, ns, name) or {}
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return None


def events(cluster: PykubeCluster, ns: str, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in cluster.list(EVENTS, ns)
            if e.get("reason") == reason and e.get("involvedObject", {}).get("name") == name]


def test_create_renders_children_with_the_right_shape(
        operator: OperatorThread, cluster: PykubeCluster, namespace: str,
        prometheus: Prometheus) -> None:
    cluster.create(TTSSERVICES, namespace, tts("shape", prometheus.url))
    gpu = wait_for("the gpu Deployment", lambda: cluster.get(DEPLOYMENTS, namespace, "shape-gpu"))
    cpu = wait_for("the cpu Deployment", lambda: cluster.get(DEPLOYMENTS, namespace, "shape-cpu"))
    owner = cluster.get(TTSSERVICES, namespace, "shape")
    assert owner is not None
    for deployment, pool in ((gpu, "gpu"), (cpu, "cpu")):
        meta = deployment["metadata"]
        assert meta["labels"]["elastictts.io/service"] == "shape"
        assert meta["labels"]["elastictts.io/pool"] == pool
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "elastic-tts-operator"
        assert meta["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]
        assert deployment["spec"]["selector"]["matchLabels"] == {
            "elastictts.io/service": "shape", "elastictts.io/pool": pool}
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["TTS_SERVICE"] == "shape" and env["TTS_POOL"] == pool
        assert env["TTS_DEVICE"] == ("cuda" if pool == "gpu" else "cpu")
        assert env["TTS_ENGINE"] == "espeak"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
        assert pod["terminationGracePeriodSeconds"] >= 30
    gpu_pod = gpu["spec"]["template"]["spec"]
    assert gpu_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu_pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "g4dn.xlarge"}
    assert gpu_pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    cpu_env = {e["name"]: e.get("value") for e in cpu["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert cpu_env["CUDA_VISIBLE_DEVICES"] == ""
    service = wait_for("the Service", lambda: cluster.get(SERVICES, namespace, "shape"))
    assert service["spec"]["selector"] == {"elastictts.io/service": "shape"}
    assert service["spec"]["ports"][0]["port"] == 8080
    pdb = wait_for("the PDB", lambda: cluster.get(PDBS, namespace, "shape"))
    assert pdb["spec"]["selector"]["matchLabels"] == {"elastictts.io/service": "shape"}
    # The first tick sizes the pools: cpu has minReplicas 1.
    wait_for("cpu at its floor", lambda: replicas(cluster, namespace, "shape-cpu") == 1)
    status = wait_for("status", lambda: (cluster.get(TTSSERVICES, namespace, "shape") or {})
                      .get("status", {}).get("mode"))
    assert status == "off-peak"
