"""Apply rendered children idempotently, and remove the ones the spec no longer wants.

Each child carries the JSON it was last rendered from (annotation
``elastictts.io/last-applied``), as `kubectl apply` does. The patch sent is the JSON
merge patch from that to the new rendering, so a field removed from the spec is removed
from the child, fields the API server defaulted are left alone, and an unchanged child
costs one GET and no write. ``spec.replicas`` is never in a rendering: only the replica
executor writes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from elastic_tts.reconcile.kinds import (
    DEPLOYMENTS,
    HTTPROUTES,
    LAST_APPLIED,
    PDBS,
    SERVICES,
    selector,
)
from elastic_tts.reconcile.ports import ApiError, Cluster, Conflict, Kind, Manifest

KINDS = {k.kind: k for k in (DEPLOYMENTS, SERVICES, PDBS, HTTPROUTES)}
Adopt = Callable[[list[Manifest]], None]


def merge_patch(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns `old` into `new` ({} when they are equal)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif isinstance(value, dict) and isinstance(old[key], dict):
            sub = merge_patch(old[key], value)
            if sub != {}:
                patch[key] = sub
        elif old[key] != value:
            patch[key] = value
    return patch


def _recorded(manifest: Manifest) -> str:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"))


def apply_child(cluster: Cluster, namespace: str, manifest: Manifest) -> str:
    """Create or converge one child. Returns 'created', 'patched' or 'unchanged'."""
    kind = KINDS[manifest["kind"]]
    name = manifest["metadata"]["name"]
    desired = json.loads(json.dumps(manifest))  # a private deep copy
    desired["metadata"].setdefault("annotations", {})[LAST_APPLIED] = _recorded(manifest)
    existing = cluster.get(kind, namespace, name)
    if existing is None:
        if kind is DEPLOYMENTS:
            desired["spec"]["replicas"] = 0  # the executor sizes it on the next tick
        try:
            cluster.create(kind, namespace, desired)
            return "created"
        except Conflict:
            existing = cluster.get(kind, namespace, name)  # created by a racing peer
            if existing is None:
                raise
    annotations = existing.get("metadata", {}).get("annotations") or {}
    try:
        previous = json.loads(annotations.get(LAST_APPLIED, "{}"))
    except ValueError:
        previous = {}
    patch = merge_patch(previous, manifest)
    if patch == {}:
        return "unchanged"
    patch.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = (
        _recorded(manifest)
    )
    cluster.patch(kind, namespace, name, patch)
    return "patched"


def prune(cluster: Cluster, namespace: str, service: str, wanted: Iterable[Manifest],
          kinds: Iterable[Kind] = (DEPLOYMENTS, SERVICES, HTTPROUTES)) -> list[str]:
    """Delete labelled children of `service` that the rendering no longer contains
    (a pool removed from the spec, routing turned off)."""
    keep = {(m["kind"], m["metadata"]["name"]) for m in wanted}
    removed = []
    for kind in kinds:
        try:
            items = cluster.list(kind, namespace, selector(service))
        except ApiError as exc:
            if exc.status == 404:  # e.g. no Gateway API in this cluster: nothing to prune
                continue
            raise
        for item in items:
            name = item["metadata"]["name"]
            if (kind.kind, name) not in keep and cluster.delete(kind, namespace, name):
                removed.append(f"{kind.kind}/{name}")
    return removed


def ensure_children(cluster: Cluster, namespace: str, service: str,
                    children: list[Manifest], adopt: Adopt,
                    prune_kinds: Iterable[Kind] = (DEPLOYMENTS, SERVICES, HTTPROUTES),
                    ) -> dict[str, str]:
    """Converge every child; returns '<Kind>/<name>' -> what happened."""
    adopt(children)
    outcome = {
        f"{m['kind']}/{m['metadata']['name']}": apply_child(cluster, namespace, m)
        for m in children
    }
    for removed in prune(cluster, namespace, service, children, prune_kinds):
        outcome[removed] = "deleted"
    return outcome
