"""A shared cache of every service's Deployments and Pods, kept by list and watch.

Why: a tick used to list its service's Deployments and Pods, two of its three API
requests (the third is its status patch). At 500 services the local API server spent a
whole core (13.4 of every 15 s) answering the cluster, and the operator's ticks waited on
it (bench/bench_operator.py); with the lists gone from the ticks, a tick makes about two
requests instead of 3.3 and 25-85 % more ticks fit the interval. Controllers built on
client-go read from shared informers for the same reason; this is the same design: one
list, then one watch per kind, and ticks read memory.

What it keeps is only what a tick reads (`slim_pod`, `slim_deployment`): a pod is about
40 KB as a Python dict and a tick needs a few hundred bytes of it. Each is kept as one
compact JSON string, decoded afresh for the tick that asks: one allocation per object
instead of about thirty (1,750 pods, each changed six times, measured alone: 0.7 MB kept
instead of 6.6 MB as dicts), and no tick can change what another one reads.

Until a mirror has listed (at start, after a lost watch, while the API server refuses)
`ChildCache.children` answers None and the tick lists for itself, as before: the cache
can make a tick cheaper, never wrong for longer than a watch event's delay.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from typing import Any

from elastic_tts.reconcile.kinds import DEPLOYMENTS, PODS, POOL_LABEL, SERVICE_LABEL
from elastic_tts.reconcile.ports import ApiError, Expired, Kind, Manifest, WatchableCluster

log = logging.getLogger(__name__)

WATCH_SECONDS = 300  # the server ends each watch after this (plus jitter); we re-watch
RETRY_SECONDS = (1.0, 30.0)  # back-off after a failed list or watch: first, most
KEPT_LABELS = (SERVICE_LABEL, POOL_LABEL)
# Objects per page of the first list, each slimmed as its page arrives: 100 pods are
# about 4 MB as dicts, where every pod of 500 services at once was about 70 MB.
LIST_PAGE = 100


def _pick(source: Mapping[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any]:
    source = source or {}
    return {k: source[k] for k in keys if k in source}


def _slim_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    slim = _pick(meta, ("name", "namespace", "uid", "resourceVersion", "creationTimestamp",
                        "deletionTimestamp"))
    slim["labels"] = _pick(meta.get("labels"), KEPT_LABELS)
    return slim


def slim_pod(pod: Mapping[str, Any]) -> Manifest:
    """The fields `observe_pools` reads: phase, reason, conditions, the containers' states
    that say why a worker cannot start, the node, and the pod's identity."""
    status = pod.get("status") or {}
    containers = [
        {**_pick(c, ("name", "ready")),
         "state": {"waiting": _pick((c.get("state") or {}).get("waiting"),
                                    ("reason", "message"))},
         "lastState": {"terminated": _pick((c.get("lastState") or {}).get("terminated"),
                                           ("reason", "message"))}}
        for c in status.get("containerStatuses") or []
    ]
    return {
        "metadata": _slim_meta(pod.get("metadata") or {}),
        "spec": _pick(pod.get("spec"), ("nodeName",)),
        "status": {**_pick(status, ("phase", "reason")),
                   "conditions": [_pick(c, ("type", "status"))
                                  for c in status.get("conditions") or []],
                   "containerStatuses": containers},
    }


def slim_deployment(deployment: Mapping[str, Any]) -> Manifest:
    """A pool's Deployment as a tick reads it: its labels and the replicas it asks for."""
    return {"metadata": _slim_meta(deployment.get("metadata") or {}),
            "spec": _pick(deployment.get("spec"), ("replicas",))}


class Mirror:
    """One kind in one namespace (or all, for None), listed and then watched by its own
    daemon thread, indexed by the service label."""

    def __init__(self, cluster: WatchableCluster, kind: Kind, namespace: str | None,
                 slim: Callable[[Mapping[str, Any]], Manifest],
                 stop: threading.Event) -> None:
        self._cluster, self._kind, self._namespace = cluster, kind, namespace
        self._slim, self._stop = slim, stop
        self._lock = threading.Lock()
        # (namespace, name) -> (its service, the slim object as compact JSON)
        self._objects: dict[tuple[str, str], tuple[str, str]] = {}
        self._by_service: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._synced = False
        self._thread = threading.Thread(
            target=self._run, daemon=True,
            name=f"watch-{kind.plural}-{namespace or 'all'}")

    def start(self) -> Mirror:
        self._thread.start()
        return self

    def items(self, namespace: str, service: str) -> list[Manifest] | None:
        """This service's objects, or None until the mirror has listed."""
        with self._lock:
            if not self._synced:
                return None
            kept = [self._objects[key][1]
                    for key in self._by_service.get((namespace, service), ())]
        return [json.loads(text) for text in kept]

    def _put(self, body: Manifest) -> None:
        meta = body["metadata"]
        key = (meta.get("namespace", ""), meta.get("name", ""))
        self._drop(key)
        service = meta["labels"].get(SERVICE_LABEL, "")
        self._objects[key] = (service, json.dumps(body, separators=(",", ":")))
        self._by_service.setdefault((key[0], service), set()).add(key)

    def _drop(self, key: tuple[str, str]) -> None:
        old = self._objects.pop(key, None)
        if old is not None:
            index = (key[0], old[0])
            members = self._by_service.get(index)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._by_service[index]

    def _list(self) -> str:
        slim, version = self._cluster.list_versioned(self._kind, self._namespace,
                                                     SERVICE_LABEL, LIST_PAGE, self._slim)
        with self._lock:
            self._objects.clear()
            self._by_service.clear()
            for body in slim:
                self._put(body)
            self._synced = True
        return version

    def _apply(self, kind_of: str, body: Manifest) -> str:
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        if kind_of == "BOOKMARK":
            return version
        slim = self._slim(body)
        key = (slim["metadata"].get("namespace", ""), slim["metadata"].get("name", ""))
        with self._lock:
            if kind_of == "DELETED":
                self._drop(key)
            else:  # ADDED, MODIFIED
                self._put(slim)
        return version

    def _run(self) -> None:
        delay = RETRY_SECONDS[0]
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                seconds = WATCH_SECONDS + random.randrange(60)  # spread the re-watches
                for kind_of, body in self._cluster.watch(self._kind, self._namespace,
                                                         SERVICE_LABEL, version, seconds):
                    version = self._apply(kind_of, body) or version
                    if self._stop.is_set():
                        return
                delay = RETRY_SECONDS[0]
            except Expired:
                version = None  # the server has compacted past us: list again, at once
            except (ApiError, OSError, ValueError, KeyError, TypeError) as exc:
                if self._stop.is_set():
                    return  # closed: the failure is the connection going with its cluster
                # Lost, refused or unreadable: the ticks list for themselves meanwhile.
                log.warning("%s watch failed, listing again in %.0f s: %s",
                            self._kind.plural, delay, exc)
                with self._lock:
                    self._synced = False
                version = None
                if self._stop.wait(delay):
                    return
                delay = min(RETRY_SECONDS[1], delay * 2)


class ChildCache:
    """The Deployments and Pods of every service, one pair of mirrors per namespace, or
    one pair for all namespaces when the operator watches the whole cluster. A namespace's
    mirrors start on the first tick there."""

    def __init__(self, cluster: WatchableCluster, cluster_wide: bool) -> None:
        self._cluster = cluster
        self._cluster_wide = cluster_wide
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._mirrors: dict[str | None, tuple[Mirror, Mirror]] = {}

    def _pair(self, namespace: str) -> tuple[Mirror, Mirror]:
        scope = None if self._cluster_wide else namespace
        with self._lock:
            pair = self._mirrors.get(scope)
            if pair is None:
                pair = (Mirror(self._cluster, DEPLOYMENTS, scope, slim_deployment,
                               self._stop).start(),
                        Mirror(self._cluster, PODS, scope, slim_pod, self._stop).start())
                self._mirrors[scope] = pair
            return pair

    def children(self, namespace: str, service: str
                 ) -> tuple[list[Manifest], list[Manifest]] | None:
        """(Deployments, Pods) of one service, or None while either mirror is not synced."""
        deployments, pods = self._pair(namespace)
        listed = deployments.items(namespace, service), pods.items(namespace, service)
        if listed[0] is None or listed[1] is None:
            return None
        return listed[0], listed[1]

    def close(self) -> None:
        self._stop.set()
