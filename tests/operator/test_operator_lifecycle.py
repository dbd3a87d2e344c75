"""The operator on the local cluster: `elastic-tts run` under the chart's ServiceAccount,
against the real API server, controllers, scheduler and kwok nodes, with a real
Prometheus. Each test has its own namespace and operator process, so any subset or order
runs; any request the chart's RBAC refuses fails the test (tests/cluster/fixtures.py)."""

from __future__ import annotations

import json
from typing import Any

import requests

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import (
    DEPLOYMENTS,
    HTTPROUTES,
    PDBS,
    PODS,
    SERVICES,
    TTSSERVICES,
)
from elastic_tts.reconcile.ports import Kind
from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.nodes import CPU_ON_DEMAND, GPU_ON_DEMAND
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import tts
from tests.cluster.fixtures import OperatorFactory
from tests.operator.cluster import wait_for

EVENTS = Kind("v1", "events", "Event")
REPLICASETS = Kind("apps/v1", "replicasets", "ReplicaSet")


def replicas(cluster: PykubeCluster, ns: str, name: str) -> int | None:
    deployment = cluster.get(DEPLOYMENTS, ns, name)
    return None if deployment is None else int(deployment["spec"].get("replicas") or 0)


def ready_pods(cluster: PykubeCluster, ns: str, deployment: str) -> list[dict[str, Any]]:
    """Pods of a Deployment that kwok reports Ready (the scheduler bound them first)."""
    pool = deployment.rsplit("-", 1)[-1]
    service = deployment[: -len(pool) - 1]
    pods = cluster.list(PODS, ns, {"elastictts.io/service": service, "elastictts.io/pool": pool})
    return [p for p in pods if not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in p.get("status", {}).get("conditions") or [])]


def condition(cluster: PykubeCluster, ns: str, name: str, kind: str) -> dict[str, Any] | None:
    obj = cluster.get(TTSSERVICES, ns, name) or {}
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return None


def status_of(cluster: PykubeCluster, ns: str, name: str) -> dict[str, Any]:
    return dict((cluster.get(TTSSERVICES, ns, name) or {}).get("status") or {})


def events(cluster: PykubeCluster, ns: str, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in cluster.list(EVENTS, ns)
            if e.get("reason") == reason and e.get("involvedObject", {}).get("name") == name]


def node_pool_of(local_cluster: LocalCluster, pod: dict[str, Any]) -> str:
    node = local_cluster.kubectl("get", "node", pod["spec"]["nodeName"], "-o",
                                 "jsonpath={.metadata.labels.elastictts\\.io/pool}").stdout
    return node.strip()


def running(start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
            body: dict[str, Any]) -> None:
    """An operator for the namespace, and the TTSService with its cpu pod Ready."""
    start_operator(namespace)
    admin.create(TTSSERVICES, namespace, body)
    name = body["metadata"]["name"]
    wait_for("a Ready cpu pod", lambda: ready_pods(admin, namespace, f"{name}-cpu"))


def test_create_renders_children_that_the_scheduler_places_on_their_pools(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, local_cluster: LocalCluster) -> None:
    start_operator(namespace)
    owner = admin.create(TTSSERVICES, namespace, tts("shape", prometheus.url))
    gpu = wait_for("the gpu Deployment", lambda: admin.get(DEPLOYMENTS, namespace, "shape-gpu"))
    cpu = wait_for("the cpu Deployment", lambda: admin.get(DEPLOYMENTS, namespace, "shape-cpu"))
    for deployment, pool in ((gpu, "gpu"), (cpu, "cpu")):
        meta = deployment["metadata"]
        assert meta["labels"]["elastictts.io/service"] == "shape"
        assert meta["labels"]["elastictts.io/pool"] == pool
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "elastic-tts-operator"
        (ref,) = meta["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"]) == (
            "TTSService", "shape", owner["metadata"]["uid"])
        assert ref.get("controller") is True and ref.get("blockOwnerDeletion") is True
        assert deployment["spec"]["selector"]["matchLabels"] == {
            "elastictts.io/service": "shape", "elastictts.io/pool": pool}
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["TTS_SERVICE"] == "shape" and env["TTS_POOL"] == pool
        assert env["TTS_DEVICE"] == ("cuda" if pool == "gpu" else "cpu")
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
        assert pod["terminationGracePeriodSeconds"] >= 30
    gpu_pod = gpu["spec"]["template"]["spec"]
    assert gpu_pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] in (1, "1")
    assert gpu_pod["nodeSelector"] == GPU_ON_DEMAND.selector()
    service = wait_for("the Service", lambda: admin.get(SERVICES, namespace, "shape"))
    assert service["spec"]["selector"] == {"elastictts.io/service": "shape"}
    assert service["spec"]["ports"][0]["port"] == 8080
    assert service["spec"]["clusterIP"]  # allocated by the API server
    pdb = wait_for("the PDB", lambda: admin.get(PDBS, namespace, "shape"))
    assert pdb["spec"]["selector"]["matchLabels"] == {"elastictts.io/service": "shape"}
    # The first tick sizes the pools: cpu has minReplicas 1. The ReplicaSet controller
    # makes the pod, the scheduler binds it to a cpu node, kwok reports it Ready.
    wait_for("cpu at its floor", lambda: replicas(admin, namespace, "shape-cpu") == 1)
    (pod,) = wait_for("a Ready cpu pod", lambda: ready_pods(admin, namespace, "shape-cpu"))
    assert node_pool_of(local_cluster, pod) == CPU_ON_DEMAND.name
    # The PDB's status comes from the disruption controller, counting that pod.
    wait_for("the PDB counted by the disruption controller", lambda: (admin.get(
        PDBS, namespace, "shape") or {}).get("status", {}).get("currentHealthy") == 1)
    wait_for("Ready", lambda: (condition(admin, namespace, "shape", "Ready") or {})
             .get("status") == "True")
    assert status_of(admin, namespace, "shape")["mode"] == "off-peak"


def test_spec_change_rolls_the_pods_but_leaves_replicas_to_the_executor(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus) -> None:
    running(start_operator, admin, namespace, tts("roll", prometheus.url))
    admin.patch(TTSSERVICES, namespace, "roll",
                {"spec": {"image": "ghcr.io/elastic-tts/worker-espeak:0.2.0"}})

    def rolled() -> bool:
        pods = ready_pods(admin, namespace, "roll-cpu")
        images = {p["spec"]["containers"][0]["image"] for p in pods}
        return images == {"ghcr.io/elastic-tts/worker-espeak:0.2.0"} and len(pods) == 1

    # The deployment controller rolls a new ReplicaSet (maxUnavailable 0: surge first).
    wait_for("the pods on the new image", rolled, timeout=60)
    sets = admin.list(REPLICASETS, namespace, {"elastictts.io/pool": "cpu"})
    assert len(sets) == 2
    assert replicas(admin, namespace, "roll-cpu") == 1  # rendering never resets it
    generation = (admin.get(TTSSERVICES, namespace, "roll") or {})["metadata"]["generation"]
    assert generation == 2  # the API server bumps it for spec changes only
    wait_for("observedGeneration", lambda: status_of(admin, namespace, "roll")
             .get("observedGeneration") == generation)


def test_load_up_brings_gpu_and_load_down_hands_over_to_cpu(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter, local_cluster: LocalCluster) -> None:
    start_operator(namespace)
    # 300 chars/s: 428 wanted, cpu tops out at 120
    exporter.set_load("load", "cpu", 300, namespace=namespace)
    admin.create(TTSSERVICES, namespace, tts("load", prometheus.url))
    wait_for("gpu replicas", lambda: (replicas(admin, namespace, "load-gpu") or 0) >= 3,
             timeout=40)
    gpu_pods = wait_for("three Ready gpu pods on GPU nodes",
                        lambda: len(ready_pods(admin, namespace, "load-gpu")) >= 3
                        and ready_pods(admin, namespace, "load-gpu"), timeout=40)
    assert {node_pool_of(local_cluster, p) for p in gpu_pods} == {GPU_ON_DEMAND.name}
    wait_for("a ScaledUp event", lambda: events(admin, namespace, "load", "ScaledUp"))
    # The status reports the long rate, which Prometheus builds up over its window: the
    # tick that scaled up on the short rate may have written a smaller figure (CI: 78.5).
    def loaded() -> dict[str, Any] | None:
        status = status_of(admin, namespace, "load")
        chars = (status.get("load") or {}).get("charactersPerSecond") or 0
        return status if chars > 100 else None

    peak = wait_for("the status load above 100 chars/s", loaded, timeout=30)
    assert peak["mode"] == "peak"
    assert peak["replicas"]["gpu"] >= 3
    # The API server prunes status fields its schema lacks: the engine's memory must be
    # declared in the CRD to survive, or a restarted operator would start from nothing.
    assert peak["engine"]["memory"]["samples"]
    # Status is atomic in the CRD: the API server records the operator's status writes as
    # one managed field, not one per leaf, so each copy of the object a watcher holds
    # stays small (the status schema says why).
    managed = (admin.get(TTSSERVICES, namespace, "load") or {})["metadata"]["managedFields"]
    writes = [m for m in managed if m.get("subresource") == "status"]
    assert writes and all(m["fieldsV1"] == {"f:status": {}} for m in writes), writes

    exporter.set_load("load", "cpu", 5, namespace=namespace)
    wait_for("gpu scaled away", lambda: replicas(admin, namespace, "load-gpu") == 0,
             timeout=60)
    wait_for("the gpu pods gone", lambda: not admin.list(
        PODS, namespace, {"elastictts.io/service": "load", "elastictts.io/pool": "gpu"}))
    assert (replicas(admin, namespace, "load-cpu") or 0) >= 1
    wait_for("a ScaledDown event", lambda: events(admin, namespace, "load", "ScaledDown"))
    wait_for("off-peak", lambda: status_of(admin, namespace, "load")["mode"] == "off-peak")


def test_semantic_spec_errors_set_invalid_spec_naming_the_field(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, local_cluster: LocalCluster) -> None:
    """What the schema cannot state (an IANA zone) the API server admits; the operator
    refuses it through InvalidSpec and a Warning event, and renders nothing."""
    start_operator(namespace)
    bad = tts("broken", prometheus.url, schedule={"timezone": "Mars/Olympus"})
    admin.create(TTSSERVICES, namespace, bad)
    cond = wait_for("InvalidSpec", lambda: condition(admin, namespace, "broken", "InvalidSpec"))
    assert cond["status"] == "True"
    assert "spec.schedule.timezone" in cond["message"]
    event = wait_for("an InvalidSpec event",
                     lambda: events(admin, namespace, "broken", "InvalidSpec"))
    assert "spec.schedule.timezone" in event[0]["message"]
    assert event[0]["type"] == "Warning"
    assert admin.get(DEPLOYMENTS, namespace, "broken-gpu") is None
    # What the schema does state, the API server refuses itself, naming the field.
    refused = local_cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", check=False,
        input=json.dumps(tts("worse", prometheus.url, pools={
            "gpu": {"accelerator": "gpu", "costPerHour": 1, "throughput": 10,
                    "maxReplicas": -1}})))
    assert refused.returncode != 0
    assert "spec.pools.gpu.maxReplicas" in refused.stderr


def test_routing_renders_an_httproute_the_gateway_api_schema_accepts(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus) -> None:
    start_operator(namespace)
    admin.create(TTSSERVICES, namespace, tts(
        "routed", prometheus.url,
        routing={"enabled": True, "gatewayRef": {"name": "gw", "namespace": "gw-system"},
                 "hostnames": ["tts.example.com"]}))
    for pool in ("gpu", "cpu"):
        wait_for(f"Service routed-{pool}",
                 lambda p=pool: admin.get(SERVICES, namespace, f"routed-{p}"))

    def weights() -> dict[str, int]:
        route = admin.get(HTTPROUTES, namespace, "routed") or {"spec": {"rules": [{}]}}
        refs = route["spec"]["rules"][0].get("backendRefs") or []
        return {ref["name"]: ref["weight"] for ref in refs}

    # One cpu replica ready, no gpu: all traffic to cpu.
    wait_for("weights by ready capacity",
             lambda: weights() == {"routed-gpu": 0, "routed-cpu": 1000}, timeout=40)
    route = admin.get(HTTPROUTES, namespace, "routed") or {}
    assert route["spec"]["parentRefs"][0]["name"] == "gw"
    assert route["spec"]["hostnames"] == ["tts.example.com"]


def test_paused_keeps_hands_off_replicas(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus) -> None:
    start_operator(namespace)
    admin.create(TTSSERVICES, namespace, tts("still", prometheus.url, paused=True))
    cond = wait_for("Paused", lambda: condition(admin, namespace, "still", "Paused"))
    assert cond["status"] == "True"
    wait_for("a tick's status", lambda: status_of(admin, namespace, "still")
             .get("mode") == "paused")
    assert replicas(admin, namespace, "still-cpu") == 0  # minReplicas 1, yet untouched
    admin.patch(TTSSERVICES, namespace, "still", {"spec": {"paused": False}})
    wait_for("unpaused: cpu at its floor",
             lambda: replicas(admin, namespace, "still-cpu") == 1)


def test_liveness_and_the_operators_own_metrics(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus) -> None:
    operator = start_operator(namespace)
    admin.create(TTSSERVICES, namespace, tts("counted", prometheus.url))
    wait_for("a decision", lambda: status_of(admin, namespace, "counted").get("lastDecision"))

    def scraped() -> str | None:
        text = requests.get(operator.metrics_url, timeout=5).text
        return text if 'service="counted"' in text else None

    text = wait_for("the service in the operator's metrics", scraped)
    for name in ("elastic_tts_decisions_total", "elastic_tts_desired_replicas",
                 "elastic_tts_estimated_cost_per_hour",
                 "elastic_tts_reconcile_duration_seconds_bucket"):
        assert name in text


def test_delete_cascades_through_the_garbage_collector(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus) -> None:
    running(start_operator, admin, namespace, tts("doomed", prometheus.url))
    wait_for("the PDB", lambda: admin.get(PDBS, namespace, "doomed"))
    admin.delete(TTSSERVICES, namespace, "doomed")
    # No finalizer: the TTSService goes at once, and kube-controller-manager's garbage
    # collector deletes its dependents, their ReplicaSets and their pods.
    wait_for("the TTSService gone", lambda: admin.get(TTSSERVICES, namespace, "doomed") is None)
    for kind, name in ((DEPLOYMENTS, "doomed-gpu"), (DEPLOYMENTS, "doomed-cpu"),
                       (SERVICES, "doomed"), (PDBS, "doomed")):
        wait_for(f"{kind.kind}/{name} gone", lambda k=kind, n=name: admin.get(k, namespace, n)
                 is None)
    wait_for("the ReplicaSets and pods gone", lambda: not admin.list(
        REPLICASETS, namespace) and not admin.list(PODS, namespace), timeout=60)
