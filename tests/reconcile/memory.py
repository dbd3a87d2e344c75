"""In-memory implementations of the reconcile layer's own ports (fakes at our own seam,
as Knative's fakePodCounter): a Cluster that stores objects as an API server would for
what the reconcile layer uses (merge patches, the scale and status subresources,
label selectors), and a LoadSource that returns the rates a test sets."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from elastic_tts.reconcile.ports import (
    Conflict,
    Kind,
    LoadQuery,
    Manifest,
    MetricsUnavailable,
    PoolLoad,
    WindowLoad,
)
from elastic_tts_dev.merge_patch import apply_merge_patch


class MemoryCluster:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str | None, str], Manifest] = {}
        self.writes: list[tuple[str, str, str, Manifest]] = []  # (verb, kind, name, body)

    def get(self, kind: Kind, namespace: str | None, name: str,
            subresource: str | None = None) -> Manifest | None:
        found = self.objects.get((kind.kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def list(self, kind: Kind, namespace: str | None,
             labels: Mapping[str, str] | None = None) -> list[Manifest]:
        return [copy.deepcopy(obj) for (k, ns, _), obj in self.objects.items()
                if k == kind.kind and ns == namespace and all(
                    obj.get("metadata", {}).get("labels", {}).get(key) == value
                    for key, value in (labels or {}).items())]

    def create(self, kind: Kind, namespace: str | None, body: Manifest) -> Manifest:
        key = (kind.kind, namespace, body["metadata"]["name"])
        if key in self.objects:
            raise Conflict(409, f"{kind.kind} {key[2]} already exists")
        self.objects[key] = copy.deepcopy(body)
        self.writes.append(("create", kind.kind, key[2], copy.deepcopy(body)))
        return copy.deepcopy(body)

    def patch(self, kind: Kind, namespace: str | None, name: str, patch: Manifest,
              subresource: str | None = None) -> Manifest:
        key = (kind.kind, namespace, name)
        if subresource == "status":
            patch = {"status": patch["status"]}
        elif subresource == "scale":
            patch = {"spec": {"replicas": patch["spec"]["replicas"]}}
        self.objects[key] = apply_merge_patch(self.objects.get(key, {}), copy.deepcopy(patch))
        self.writes.append((f"patch{'/' + subresource if subresource else ''}", kind.kind,
                            name, copy.deepcopy(patch)))
        return copy.deepcopy(self.objects[key])

    def delete(self, kind: Kind, namespace: str | None, name: str) -> bool:
        return self.objects.pop((kind.kind, namespace, name), None) is not None


class StaticLoad:
    """Characters per second by pool, the same over every window; `None`: unavailable."""

    def __init__(self, characters: Mapping[str, float] | None = None) -> None:
        self.characters = dict(characters or {})
        self.available = True

    def load(self, query: LoadQuery) -> dict[str, WindowLoad]:
        if not self.available:
            raise MetricsUnavailable("the test says so")
        window = WindowLoad({pool: PoolLoad(characters=rate, requests=rate / 100)
                             for pool, rate in self.characters.items()})
        return dict.fromkeys(query.windows, window)
