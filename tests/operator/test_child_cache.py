"""The ticks' shared cache of Deployments and pods (reconcile/informer.py) on the real API
server, under the chart's ServiceAccount token: it mirrors what a list returns through
scale-ups, scale-downs and deletion, and what it keeps of each object makes the same
pool view as the whole objects."""

from __future__ import annotations

from datetime import datetime

import kopf
import pykube

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.policy import parse_spec
from elastic_tts.reconcile.children import ensure_children
from elastic_tts.reconcile.informer import ChildCache, slim_deployment, slim_pod
from elastic_tts.reconcile.kinds import (
    DEPLOYMENTS,
    PODS,
    SERVICE_LABEL,
    TTSSERVICES,
    pool_child_name,
    selector,
)
from elastic_tts.reconcile.observe import observe_pools
from elastic_tts.reconcile.render import render_children
from elastic_tts_dev.specs import CPU, GPU, tts
from tests.cluster.fixtures import Installation, forbidden_since
from tests.operator.cluster import wait_for


def names(objects: list[dict]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objects)


def test_cache_follows_the_live_objects_and_observes_alike(
        installed: Installation, admin: PykubeCluster, namespace: str) -> None:
    since = datetime.now().astimezone()
    operator = PykubeCluster(pykube.HTTPClient(
        pykube.KubeConfig.from_file(str(installed.kubeconfig)), timeout=15.0))
    owner = admin.create(TTSSERVICES, namespace,
                         tts("mirrored", "http://127.0.0.1:9", pools={"gpu": GPU, "cpu": CPU}))
    spec = parse_spec(owner)
    ensure_children(admin, namespace, "mirrored", render_children("mirrored", spec),
                    lambda objs: kopf.adopt(objs, owner=owner))
    cache = ChildCache(operator, cluster_wide=False)
    try:
        def agrees(replicas: int) -> bool:
            cached = cache.children(namespace, "mirrored")
            if cached is None:
                return False
            deployments = admin.list(DEPLOYMENTS, namespace, selector("mirrored"))
            pods = admin.list(PODS, namespace, selector("mirrored"))
            live_phases = sorted((p["metadata"]["name"], p["status"].get("phase"))
                                 for p in pods)
            cached_phases = sorted((p["metadata"]["name"], p["status"].get("phase"))
                                   for p in cached[1])
            cpu = [d for d in cached[0] if d["metadata"]["name"].endswith("-cpu")]
            return (names(cached[0]) == names(deployments) and len(pods) == replicas
                    and cached_phases == live_phases
                    and bool(cpu) and cpu[0]["spec"].get("replicas") == replicas)

        cpu_child = pool_child_name("mirrored", "cpu")
        for replicas in (3, 1):
            admin.patch(DEPLOYMENTS, namespace, cpu_child, {"spec": {"replicas": replicas}},
                        subresource="scale")
            wait_for(f"the cache to show {replicas} cpu pods as a list does",
                     lambda r=replicas: agrees(r), timeout=60)  # type: ignore[misc]
        # The first list comes in pages, each cut down as it arrives (the mirror's list).
        listed, version = operator.list_versioned(PODS, namespace, SERVICE_LABEL, page=1,
                                                  keep=slim_pod)
        assert names(listed) == names(admin.list(PODS, namespace, selector("mirrored")))
        assert version and listed and all(set(p["spec"]) <= {"nodeName"} for p in listed)

        # What the cache keeps gives the tick the same view as the whole objects.
        wait_for("a running pod", lambda: any(
            p["status"].get("phase") == "Running"
            for p in admin.list(PODS, namespace, selector("mirrored"))), timeout=60)
        deployments = admin.list(DEPLOYMENTS, namespace, selector("mirrored"))
        pods = admin.list(PODS, namespace, selector("mirrored"))
        now = datetime.now().timestamp()
        whole = observe_pools(spec, deployments, pods, [], set(), now)
        slim = observe_pools(spec, [slim_deployment(d) for d in deployments],
                             [slim_pod(p) for p in pods], [], set(), now)
        assert slim == whole
        assert whole.states["cpu"].ready == 1

        for child in names(deployments):
            admin.delete(DEPLOYMENTS, namespace, child)
        wait_for("the cache to drop the deleted Deployments", lambda: (
            (cache.children(namespace, "mirrored") or (["still"], []))[0] == []), timeout=60)
    finally:
        cache.close()
    assert forbidden_since(installed, since) == []
