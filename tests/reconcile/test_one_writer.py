"""The tick is the one writer of what follows the load (replica counts and the HTTPRoute's
weights); the lifecycle handler's convergence only creates the children and shapes them.

Against in-memory ports, with the real render, converge, executor and tick code: the
weights the tick set survive a spec update and an operator restart, and a route whose
weights strayed (written by an older operator, or by hand) is put right by the next tick
even when status says the weights are already right.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from elastic_tts.policy import parse_spec
from elastic_tts.reconcile.children import converge_children
from elastic_tts.reconcile.kinds import DEPLOYMENTS, HTTPROUTES, PODS, TTSSERVICES
from elastic_tts.reconcile.render import route_backend_weights
from elastic_tts.reconcile.tick import ServiceRef, Ticker, TickResult
from elastic_tts_dev.specs import CPU, GPU, tts
from tests.reconcile.memory import MemoryCluster, StaticLoad

NS, NAME = "prod", "tts"
T0 = 1_800_000_000.0
ROUTED = {"enabled": True, "gatewayRef": {"name": "gw"}, "hostnames": ["a.example.com"]}


def no_adopt(objs: list[dict[str, Any]]) -> None:
    """kopf.adopt sets ownerReferences; the ports here do not need them."""


class Operator:
    """One operator process: its Ticker and the engine memory its daemon would keep."""

    def __init__(self, cluster: MemoryCluster, load: StaticLoad) -> None:
        self.cluster = cluster
        self.ticker = Ticker(cluster, load)
        self.memory = None

    def converge(self) -> dict[str, str]:
        """What the create/update/resume handler does."""
        body = self.cluster.get(TTSSERVICES, NS, NAME) or {}
        return converge_children(self.cluster, NS, NAME, parse_spec(body), no_adopt)

    def tick(self, now: float) -> TickResult:
        """What the daemon does every interval."""
        body = self.cluster.get(TTSSERVICES, NS, NAME) or {}
        ref = ServiceRef(NAME, NS, body["metadata"].get("generation"))
        result = self.ticker.tick(ref, body["spec"], body.get("status") or {}, now, no_adopt,
                                  self.memory)
        self.ticker.write_status(ref, body.get("status") or {}, result.status)
        self.memory = result.decision.memory if result.decision else None
        return result


def ready_pods(cluster: MemoryCluster, pool: str, count: int) -> None:
    for index in range(count):
        cluster.create(PODS, NS, {
            "metadata": {"name": f"{NAME}-{pool}-{index}", "uid": f"{pool}-{index}",
                         "labels": {"elastictts.io/service": NAME, "elastictts.io/pool": pool}},
            "spec": {"nodeName": "n1"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})


def live_weights(cluster: MemoryCluster) -> dict[str, int]:
    return route_backend_weights(cluster.get(HTTPROUTES, NS, NAME))


@pytest.fixture
def running() -> tuple[MemoryCluster, StaticLoad, Operator]:
    """A routed service with one GPU and two CPU replicas ready, after its first tick."""
    cluster, load = MemoryCluster(), StaticLoad({"gpu": 60.0, "cpu": 20.0})
    resource = tts(NAME, "http://prometheus:9090", pools={"gpu": GPU, "cpu": CPU},
                   routing=ROUTED)
    resource["metadata"].update(namespace=NS, generation=1)
    cluster.create(TTSSERVICES, NS, resource)
    operator = Operator(cluster, load)
    outcome = operator.converge()
    assert f"HTTPRoute/{NAME}" not in outcome  # the route is the tick's to write
    ready_pods(cluster, "gpu", 1)
    ready_pods(cluster, "cpu", 2)
    operator.tick(T0)
    return cluster, load, operator


EXPECTED = {"tts-gpu": 714, "tts-cpu": 286}  # 1 x 100 and 2 x 20 chars/s of capacity


def test_the_first_tick_writes_weights_by_ready_capacity(
        running: tuple[MemoryCluster, StaticLoad, Operator]) -> None:
    cluster, _, _ = running
    assert live_weights(cluster) == EXPECTED
    status = (cluster.get(TTSSERVICES, NS, NAME) or {})["status"]
    assert status["routeWeights"] == {"gpu": 714, "cpu": 286}


def test_weights_survive_a_spec_update(
        running: tuple[MemoryCluster, StaticLoad, Operator]) -> None:
    cluster, _, operator = running
    body = cluster.get(TTSSERVICES, NS, NAME) or {}
    spec = copy.deepcopy(body["spec"])
    spec["image"] = "ghcr.io/elastic-tts/worker-espeak:0.2.0"
    spec["routing"]["hostnames"] = ["b.example.com"]
    cluster.patch(TTSSERVICES, NS, NAME, {"spec": spec, "metadata": {"generation": 2}})
    outcome = operator.converge()
    assert outcome[f"Deployment/{NAME}-gpu"] == "patched"  # the shape follows the spec...
    assert live_weights(cluster) == EXPECTED  # ...and the weights are left alone
    result = operator.tick(T0 + 15)
    route = cluster.get(HTTPROUTES, NS, NAME) or {}
    assert route["spec"]["hostnames"] == ["b.example.com"]  # the tick shaped the route
    assert result.route == "patched"
    assert live_weights(cluster) == EXPECTED


def test_weights_survive_an_operator_restart(
        running: tuple[MemoryCluster, StaticLoad, Operator]) -> None:
    cluster, load, _ = running
    restarted = Operator(cluster, load)  # nothing in memory; status and the cluster remain
    restarted.converge()  # kopf resumes every object on start
    assert live_weights(cluster) == EXPECTED
    result = restarted.tick(T0 + 15)
    assert result.route == "unchanged"
    assert live_weights(cluster) == EXPECTED
    assert result.changes == []  # and the replicas did not flap


def test_strayed_weights_are_put_right_though_status_says_otherwise(
        running: tuple[MemoryCluster, StaticLoad, Operator]) -> None:
    """What an older operator left behind: equal weights, with status claiming the real
    ones (its tick compared with status, so it never wrote them back)."""
    cluster, load, _ = running
    route = cluster.get(HTTPROUTES, NS, NAME) or {}
    for ref in route["spec"]["rules"][0]["backendRefs"]:
        ref["weight"] = 1
    cluster.patch(HTTPROUTES, NS, NAME, {"spec": route["spec"]})
    assert live_weights(cluster) == {"tts-gpu": 1, "tts-cpu": 1}
    result = Operator(cluster, load).tick(T0 + 15)
    assert result.route == "patched"
    assert live_weights(cluster) == EXPECTED


def test_only_the_executor_writes_replicas(
        running: tuple[MemoryCluster, StaticLoad, Operator]) -> None:
    cluster, load, operator = running
    cluster.writes.clear()
    load.characters = {"gpu": 300.0, "cpu": 0.0}
    operator.tick(T0 + 15)
    operator.converge()
    replica_writes = [(verb, name) for verb, kind, name, body in cluster.writes
                      if kind == DEPLOYMENTS.kind and "replicas" in body.get("spec", {})]
    assert replica_writes and all(verb == "patch/scale" for verb, _ in replica_writes)
