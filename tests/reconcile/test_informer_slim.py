"""What the child cache keeps of a pod or Deployment must give the tick the same pool view
as the whole object, for every state the observer tells apart: Ready, Pending since a
time, draining, evicted, disrupted, on a node going away, and a worker that cannot start.
(tests/operator/test_child_cache.py checks the same on the real API server's objects.)"""

from __future__ import annotations

from typing import Any

from elastic_tts.policy import parse_spec
from elastic_tts.reconcile.informer import slim_deployment, slim_pod
from elastic_tts.reconcile.kinds import POOL_LABEL, SERVICE_LABEL
from elastic_tts.reconcile.observe import observe_pools
from elastic_tts_dev.specs import CPU, GPU, tts

NOW = 1_795_000_000.0


def pod(name: str, pool: str, *, phase: str = "Running", ready: bool = True,
        node: str = "node-a", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                     "creationTimestamp": "2026-11-16T07:00:00Z",
                     "labels": {SERVICE_LABEL: "svc", POOL_LABEL: pool, "extra": "dropped"},
                     "annotations": {"big": "x" * 1000}},
        "spec": {"nodeName": node, "containers": [{"name": "worker", "image": "w"}]},
        "status": {"phase": phase, "podIP": "10.0.0.1",
                   "conditions": [{"type": "Ready", "status": str(ready),
                                   "lastTransitionTime": "2026-11-16T07:00:05Z"}],
                   **status},
    }


def test_slim_objects_observe_as_the_whole_ones() -> None:
    spec = parse_spec(tts("svc", "http://127.0.0.1:9", pools={"gpu": GPU, "cpu": CPU}))
    crash = {"name": "worker", "ready": False, "restartCount": 3,
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
             "lastState": {"terminated": {"reason": "Error", "exitCode": 3,
                                          "message": "engine sambert: CUDA out of memory\n.."}}}
    pull = {"name": "worker", "ready": False,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}
    pods = [
        pod("ready", "cpu"),
        pod("pending", "gpu", phase="Pending", ready=False, node=""),
        {**pod("draining", "cpu"),
         "metadata": {**pod("draining", "cpu")["metadata"],
                      "deletionTimestamp": "2026-11-16T07:01:00Z"}},
        pod("evicted", "gpu", phase="Failed", ready=False, reason="Evicted"),
        pod("disrupted", "gpu", conditions=[{"type": "DisruptionTarget", "status": "True"}]),
        pod("doomed", "gpu", node="node-going"),
        pod("crashing", "gpu", ready=False, containerStatuses=[crash]),
        pod("pulling", "cpu", phase="Pending", ready=False, containerStatuses=[pull]),
    ]
    deployments = [{"metadata": {"name": f"svc-{p}", "labels": {SERVICE_LABEL: "svc",
                                                                POOL_LABEL: p}},
                    "spec": {"replicas": n, "template": {"spec": {}}},
                    "status": {"readyReplicas": 1}} for p, n in (("gpu", 5), ("cpu", 3))]
    nodes = [{"metadata": {"name": "node-going", "deletionTimestamp": "2026-11-16T07:00:00Z"}}]
    whole = observe_pools(spec, deployments, pods, nodes, {"uid-evicted"}, NOW)
    slim = observe_pools(spec, [slim_deployment(d) for d in deployments],
                         [slim_pod(p) for p in pods], nodes, {"uid-evicted"}, NOW)
    assert slim == whole
    # The cases above are really told apart (the comparison is not of two empty views).
    assert whole.interrupted_uids == {"uid-evicted", "uid-disrupted", "uid-doomed"}
    assert whole.states["gpu"].interrupted == 2 and whole.states["gpu"].pending == 1
    assert whole.states["cpu"].ready == 1 and whole.states["cpu"].current == 3
    assert set(whole.worker_problems) == {"gpu", "cpu"}


def test_slim_pod_keeps_only_what_a_tick_reads() -> None:
    slim = slim_pod(pod("ready", "cpu"))
    assert slim["metadata"]["labels"] == {SERVICE_LABEL: "svc", POOL_LABEL: "cpu"}
    assert "annotations" not in slim["metadata"] and "podIP" not in slim["status"]
    assert slim["status"]["conditions"] == [{"type": "Ready", "status": "True"}]
