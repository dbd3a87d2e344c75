"""Spot on the local cluster, with a spot node pool of the test's own: a shortage is
no spot node at all, so the scheduler really leaves the pods Pending; an interruption
taints, cordons, drains and deletes a node as Karpenter's interruption handling does;
spot capacity comes back as new nodes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import PODS, TTSSERVICES
from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.nodes import G4DN_12XLARGE, NodePool
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import GPU, SPOT, on_nodes, tts
from tests.cluster.fixtures import OperatorFactory
from tests.operator.cluster import wait_for
from tests.operator.test_operator_lifecycle import (
    condition,
    events,
    node_pool_of,
    ready_pods,
    replicas,
    status_of,
)


@pytest.fixture()
def spot_nodes(local_cluster: LocalCluster) -> Iterator[NodePool]:
    """A spot pool of the test's own, with no nodes yet; its nodes go afterwards."""
    pool = NodePool(f"spot-{secrets.token_hex(3)}", G4DN_12XLARGE, count=0,
                    capacity_type="spot")
    yield pool
    names = local_cluster.kubectl("get", "nodes", "-l", f"elastictts.io/pool={pool.name}",
                                  "-o", "name").stdout.split()
    local_cluster.delete_nodes(n.removeprefix("node/") for n in names)


def spot_service(name: str, prometheus: Prometheus, nodes: NodePool) -> dict[str, Any]:
    return tts(name, prometheus.url, pools={"gpu": GPU, "spot": on_nodes(SPOT, nodes)},
               scaling={"maxSpotFraction": 0.7})


def unschedulable(cluster: PykubeCluster, ns: str, service: str) -> list[dict[str, Any]]:
    pods = cluster.list(PODS, ns, {"elastictts.io/service": service,
                                   "elastictts.io/pool": "spot"})
    return [p for p in pods if any(
        c["type"] == "PodScheduled" and c["status"] == "False" and c.get("reason") ==
        "Unschedulable" for c in p.get("status", {}).get("conditions") or [])]


def fallback_on(cluster: PykubeCluster, ns: str, name: str) -> dict[str, Any] | None:
    cond = condition(cluster, ns, name, "SpotFallback")
    return cond if cond and cond["status"] == "True" else None


def test_spot_shortage_falls_back_to_on_demand_then_returns_to_spot(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter, local_cluster: LocalCluster,
        spot_nodes: NodePool) -> None:
    start_operator(namespace)
    exporter.set_load("shortage", "spot", 200, namespace=namespace)
    admin.create(TTSSERVICES, namespace, spot_service("shortage", prometheus, spot_nodes))
    wait_for("spot replicas asked for",
             lambda: (replicas(admin, namespace, "shortage-spot") or 0) > 0, timeout=40)
    # No node carries the pool's label: the scheduler says so on each pod.
    pending = wait_for("spot pods left Pending by the scheduler",
                       lambda: unschedulable(admin, namespace, "shortage"))
    message = next(c["message"] for c in pending[0]["status"]["conditions"]
                   if c["type"] == "PodScheduled")
    assert "node(s) didn't match Pod's node affinity/selector" in message
    fallback = wait_for("SpotFallback", lambda: fallback_on(admin, namespace, "shortage"),
                        timeout=30)
    assert "covered by gpu" in fallback["message"]
    wait_for("a SpotFallback event", lambda: events(admin, namespace, "shortage",
                                                    "SpotFallback"))
    covered = wait_for("on-demand covering", lambda: (replicas(
        admin, namespace, "shortage-gpu") or 0) >= 3 and replicas(admin, namespace,
                                                                   "shortage-gpu"))
    wait_for("Ready on-demand pods", lambda: len(ready_pods(
        admin, namespace, "shortage-gpu")) >= 3, timeout=30)
    # Make-before-break kept the pending spot replicas until on-demand was Ready.
    wait_for("spot released", lambda: replicas(admin, namespace, "shortage-spot") == 0,
             timeout=30)

    local_cluster.add_nodes(spot_nodes, 2)  # the cloud has spot capacity again
    wait_for("SpotRecovered", lambda: events(admin, namespace, "shortage", "SpotRecovered"),
             timeout=60)
    wait_for("capacity back on spot", lambda: len(ready_pods(
        admin, namespace, "shortage-spot")) > 0 and (replicas(
            admin, namespace, "shortage-gpu") or 0) < covered, timeout=60)
    for pod in ready_pods(admin, namespace, "shortage-spot"):
        assert node_pool_of(local_cluster, pod) == spot_nodes.name
    assert (condition(admin, namespace, "shortage", "SpotFallback") or {})["status"] == "False"


def test_spot_interruption_falls_back_and_returns(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter, local_cluster: LocalCluster,
        spot_nodes: NodePool) -> None:
    local_cluster.add_nodes(spot_nodes, 2)
    start_operator(namespace)
    # Workers without the admission series: the engine sizes at targetUtilization, so the
    # capacity split is the spec's: 400 chars/s asks for 571, spot's share (0.7) is its
    # ceiling of four replicas on the two spot nodes (this test is about the fallback;
    # tests/operator/test_admission_signals.py covers refusal-led sizing).
    exporter.set_load("reclaim", "spot", 400, namespace=namespace, admission=False)
    admin.create(TTSSERVICES, namespace, spot_service("reclaim", prometheus, spot_nodes))
    running = wait_for("four Ready spot pods", lambda: (
        lambda pods: pods if len(pods) >= 4 else None)(
            ready_pods(admin, namespace, "reclaim-spot")), timeout=60)
    wait_for("steady before the reclaim", lambda: (condition(
        admin, namespace, "reclaim", "Ready") or {}).get("status") == "True", timeout=40)
    assert not events(admin, namespace, "reclaim", "SpotFallback")  # none while spot is fine
    # One reclaimed replica is replaced on spot (issue 10); a node carrying two or more of
    # the pool's four is a wave, and the pool backs off.
    nodes = [p["spec"]["nodeName"] for p in running]
    victim = max(set(nodes), key=nodes.count)
    assert nodes.count(victim) >= 2, nodes

    local_cluster.interrupt_node(victim, notice=20)
    wait_for("SpotFallback after the reclaim",
             lambda: fallback_on(admin, namespace, "reclaim"), timeout=30)
    # The evicted pods carried DisruptionTarget while they terminated: the operator saw
    # an interruption wave, not a shortage, and says so in its decision.
    wait_for("the back-off names the interruption wave", lambda: "interrupted" in str(
        (status_of(admin, namespace, "reclaim").get("lastDecision") or {}).get("reason")),
        timeout=30)
    assert not any(n.endswith(victim) for n in local_cluster.kubectl(
        "get", "nodes", "-o", "name").stdout.split())
    # The other spot node is still there: after the back-off, capacity returns to spot.
    wait_for("SpotRecovered", lambda: events(admin, namespace, "reclaim", "SpotRecovered"),
             timeout=60)
    wait_for("spot Ready again", lambda: ready_pods(admin, namespace, "reclaim-spot"),
             timeout=30)
    for pod in ready_pods(admin, namespace, "reclaim-spot"):
        assert pod["spec"]["nodeName"] != victim
