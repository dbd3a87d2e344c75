"""The operator end to end, in process, against KMock over HTTP and a real Prometheus:
children, scaling with load, spec changes, invalid specs, routing, pause and delete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.handlers import metrics as operator_metrics
from elastic_tts.reconcile.kinds import (
    DEPLOYMENTS,
    HTTPROUTES,
    PDBS,
    SERVICES,
    TTSSERVICES,
)
from elastic_tts.reconcile.ports import Kind
from elastic_tts_dev.processes import free_port
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import GPU, SPOT, tts
from tests.crd import crd_files, structural
from tests.crd.crd_files import ROOT
from tests.operator.cluster import FakeKubelet, OperatorThread, wait_for
from tests.operator.conftest import OPERATOR_TOKEN

EVENTS = Kind("v1", "events", "Event")


LIVENESS_PORT = free_port()


@pytest.fixture(scope="module")
def operator(api_server: Any, namespace: str, kubelet: FakeKubelet,
             prometheus: Prometheus) -> Iterator[OperatorThread]:
    running = OperatorThread(
        namespace, liveness_endpoint=f"http://127.0.0.1:{LIVENESS_PORT}/healthz").start()
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
    cpu_container = cpu["spec"]["template"]["spec"]["containers"][0]
    cpu_env = {e["name"]: e.get("value") for e in cpu_container["env"]}
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


def test_spec_change_rolls_the_template_but_leaves_replicas_to_the_executor(
        operator: OperatorThread, cluster: PykubeCluster, namespace: str) -> None:
    wait_for("cpu at its floor", lambda: replicas(cluster, namespace, "shape-cpu") == 1)
    cluster.patch(TTSSERVICES, namespace, "shape",
                  {"spec": {"image": "ghcr.io/elastic-tts/worker:0.2.0"}})

    def image() -> str:
        deployment = cluster.get(DEPLOYMENTS, namespace, "shape-cpu") or {}
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    wait_for("the new image", lambda: image().endswith(":0.2.0"))
    assert replicas(cluster, namespace, "shape-cpu") == 1  # rendering never resets it
    status = (cluster.get(TTSSERVICES, namespace, "shape") or {})["status"]
    generation = (cluster.get(TTSSERVICES, namespace, "shape") or {})["metadata"]["generation"]
    wait_for("observedGeneration", lambda: (cluster.get(TTSSERVICES, namespace, "shape") or {})
             ["status"].get("observedGeneration") == generation)
    assert status["conditions"]


def test_load_up_brings_gpu_and_load_down_hands_over_to_cpu(
        operator: OperatorThread, cluster: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter) -> None:
    exporter.set_load("load", "cpu", 300)  # 300 chars/s: 428 wanted, cpu tops out at 120
    cluster.create(TTSSERVICES, namespace, tts("load", prometheus.url))
    wait_for("gpu replicas", lambda: (replicas(cluster, namespace, "load-gpu") or 0) >= 3,
             timeout=40)
    wait_for("a ScaledUp event", lambda: events(cluster, namespace, "load", "ScaledUp"))
    peak = (cluster.get(TTSSERVICES, namespace, "load") or {})["status"]
    # A real API server prunes status fields its schema lacks (engine memory among them):
    # what the operator writes must fit the shipped CRD exactly.
    status_schema = crd_files.root_schema()["properties"]["status"]
    assert structural.schema_errors(status_schema, peak) == []
    assert peak["mode"] == "peak"
    assert peak["load"]["charactersPerSecond"] > 100
    assert peak["replicas"]["gpu"] >= 3

    exporter.set_load("load", "cpu", 5)
    wait_for("gpu scaled away", lambda: replicas(cluster, namespace, "load-gpu") == 0,
             timeout=60)
    assert (replicas(cluster, namespace, "load-cpu") or 0) >= 1
    wait_for("a ScaledDown event", lambda: events(cluster, namespace, "load", "ScaledDown"))
    wait_for("off-peak", lambda: (cluster.get(TTSSERVICES, namespace, "load") or {})
             ["status"]["mode"] == "off-peak")


def test_spot_pending_falls_back_to_on_demand_then_returns_to_spot(
        operator: OperatorThread, cluster: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter, kubelet: FakeKubelet) -> None:
    kubelet.pending.add(("spot", "spot"))  # no spot capacity in the zone
    exporter.set_load("spot", "spot", 200)
    cluster.create(TTSSERVICES, namespace, tts(
        "spot", prometheus.url, pools={"gpu": GPU, "spot": SPOT},
        scaling={"maxSpotFraction": 0.7}))
    wait_for("spot replicas asked for",
             lambda: (replicas(cluster, namespace, "spot-spot") or 0) > 0, timeout=40)
    fallback = wait_for("SpotFallback", lambda: (condition(cluster, namespace, "spot",
                                                           "SpotFallback") or {})
                        .get("status") == "True" and condition(cluster, namespace, "spot",
                                                               "SpotFallback"))
    assert "covered by gpu" in fallback["message"]
    wait_for("a SpotFallback event", lambda: events(cluster, namespace, "spot", "SpotFallback"))
    covered = wait_for("on-demand covering", lambda: (replicas(cluster, namespace, "spot-gpu")
                                                      or 0) >= 3 and replicas(cluster, namespace,
                                                                              "spot-gpu"))
    # Make-before-break keeps the pending spot replicas until on-demand is Ready.
    wait_for("spot released", lambda: replicas(cluster, namespace, "spot-spot") == 0)

    kubelet.pending.discard(("spot", "spot"))  # spot capacity is back
    wait_for("SpotRecovered", lambda: events(cluster, namespace, "spot", "SpotRecovered"),
             timeout=40)
    wait_for("capacity back on spot", lambda: (replicas(cluster, namespace, "spot-spot") or 0) > 0
             and (replicas(cluster, namespace, "spot-gpu") or 0) < covered, timeout=30)
    assert (condition(cluster, namespace, "spot", "SpotFallback") or {})["status"] == "False"


def test_invalid_spec_sets_condition_and_event_naming_the_field(
        operator: OperatorThread, cluster: PykubeCluster, namespace: str,
        prometheus: Prometheus) -> None:
    bad = tts("broken", prometheus.url, pools={"gpu": {**GPU, "maxReplicas": -1}})
    cluster.create(TTSSERVICES, namespace, bad)
    cond = wait_for("InvalidSpec", lambda: condition(cluster, namespace, "broken", "InvalidSpec"))
    assert cond["status"] == "True"
    assert "spec.pools.gpu.maxReplicas" in cond["message"]
    event = wait_for("an InvalidSpec event",
                     lambda: events(cluster, namespace, "broken", "InvalidSpec"))
    assert "spec.pools.gpu.maxReplicas" in event[0]["message"]
    assert event[0]["type"] == "Warning"
    assert cluster.get(DEPLOYMENTS, namespace, "broken-gpu") is None


def test_routing_renders_per_pool_services_and_weights_by_ready_capacity(
        operator: OperatorThread, cluster: PykubeCluster, namespace: str,
        prometheus: Prometheus) -> None:
    cluster.create(TTSSERVICES, namespace, tts(
        "routed", prometheus.url,
        routing={"enabled": True, "gatewayRef": {"name": "gw", "namespace": "gw-system"},
                 "hostnames": ["tts.example.com"]}))
    for pool in ("gpu", "cpu"):
        wait_for(f"Service routed-{pool}",
                 lambda p=pool: cluster.get(SERVICES, namespace, f"routed-{p}"))

    def weights() -> dict[str, int]:
        route = cluster.get(HTTPROUTES, namespace, "routed") or {"spec": {"rules": [{}]}}
        refs = route["spec"]["rules"][0].get("backendRefs") or []
        return {ref["name"]: ref["weight"] for ref in refs}

    # One cpu replica ready, no gpu: all traffic to cpu.
    wait_for("weights by ready capacity",
             lambda: weights() == {"routed-gpu": 0, "routed-cpu": 1000})
    route = cluster.get(HTTPROUTES, namespace, "routed") or {}
    assert route["spec"]["parentRefs"][0]["name"] == "gw"
    assert route["spec"]["hostnames"] == ["tts.example.com"]


def test_paused_keeps_hands_off_replicas(
        operator: OperatorThread, cluster: PykubeCluster, namespace: str,
        prometheus: Prometheus) -> None:
    cluster.create(TTSSERVICES, namespace, tts("still", prometheus.url, paused=True))
    cond = wait_for("Paused", lambda: condition(cluster, namespace, "still", "Paused"))
    assert cond["status"] == "True"
    wait_for("a tick's status", lambda: (cluster.get(TTSSERVICES, namespace, "still") or {})
             .get("status", {}).get("mode") == "paused")
    assert replicas(cluster, namespace, "still-cpu") == 0  # minReplicas 1, yet untouched


def test_liveness_and_operator_metrics(operator: OperatorThread) -> None:
    assert requests.get(f"http://127.0.0.1:{LIVENESS_PORT}/healthz", timeout=5).ok
    port = free_port()
    operator_metrics.serve(port, "127.0.0.1")
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for name in ("elastic_tts_decisions_total", "elastic_tts_desired_replicas",
                 "elastic_tts_estimated_cost_per_hour",
                 "elastic_tts_reconcile_duration_seconds_bucket"):
        assert name in text
    assert 'service="load"' in text


def test_delete_takes_the_children_with_it(
        operator: OperatorThread, cluster: PykubeCluster, namespace: str) -> None:
    assert cluster.get(DEPLOYMENTS, namespace, "shape-gpu") is not None
    cluster.delete(TTSSERVICES, namespace, "shape")
    for kind, name in ((DEPLOYMENTS, "shape-gpu"), (DEPLOYMENTS, "shape-cpu"),
                       (SERVICES, "shape"), (PDBS, "shape")):
        wait_for(f"{kind.kind}/{name} gone", lambda k=kind, n=name: cluster.get(k, namespace, n)
                 is None)



# Grants the scenarios above cannot exercise, and why each is still needed.
NOT_EXERCISED = {
    ("delete", "apps", "deployments"): "pruning a pool removed from the spec",
    ("delete", "", "services"): "pruning per-pool Services when routing is turned off",
    ("delete", "gateway.networking.k8s.io", "httproutes"): "pruning when routing is turned off",
    ("patch", "policy", "poddisruptionbudgets"): "a PDB whose rendering changed",
    ("patch", "", "services"): "a Service whose rendering changed",
    ("list", "", "nodes"): "pods scheduled on nodes (the fake kubelet assigns none)",
    **{(verb, "kopf.dev", resource): "peering; every test runs --standalone"
       for verb in ("get", "list", "watch", "patch")
       for resource in ("clusterkopfpeerings", "kopfpeerings")},
}


def test_rbac_rules_cover_every_call_and_grant_nothing_unused(api_server: Any) -> None:
    """Runs last in this module (pytest keeps file order): by now the operator has made
    every kind of call these scenarios cause, recorded by identity at the API server."""
    rules = yaml.safe_load((ROOT / "charts/elastic-tts/files/rbac-rules.yaml").read_text())
    granted = {(verb, group, resource) for rule in rules for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    made = {call[1:] for call in api_server.server.calls if call[0] == OPERATOR_TOKEN}
    assert len(made) > 20  # the scenarios above really ran against this server
    assert made - granted == set(), "calls the ClusterRole would refuse"
    assert granted - made - set(NOT_EXERCISED) == set(), "grants nothing uses"
    assert set(NOT_EXERCISED) <= granted
