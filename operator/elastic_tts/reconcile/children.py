"""Apply rendered children idempotently, and remove the ones the spec no longer wants.

Each child carries the JSON it was last rendered from (annotation
``elastictts.io/last-applied``), as `kubectl apply` does. The patch sent is the JSON
merge patch from that to the new rendering, so a field removed from the spec is removed
from the child, fields the API server defaulted are left alone, and an unchanged child
costs one GET and no write. ``spec.replicas`` is never in a rendering: only the replica
executor writes it. Where the live object may have strayed from what was applied (the
HTTPRoute's weights), the caller says how to tell, and the whole rendering is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from elastic_tts.policy import TTSServiceSpec
from elastic_tts.reconcile.kinds import (
    DEPLOYMENTS,
    HTTPROUTES,
    LAST_APPLIED,
    PDBS,
    SERVICES,
    selector,
)
from elastic_tts.reconcile.ports import ApiError, Cluster, Conflict, Kind, Manifest
from elastic_tts.reconcile.render import owned_children, render_children

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


def apply_child(cluster: Cluster, namespace: str, manifest: Manifest,
                strayed: Callable[[Manifest], bool] | None = None) -> str:
    """Create or converge one child. Returns 'created', 'patched' or 'unchanged'.
    ``strayed(live)`` true means the live object differs from the rendering in a way the
    last-applied record cannot show, so everything rendered is sent again."""
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
    if strayed is not None and strayed(existing):
        previous = {}
    patch = merge_patch(previous, manifest)
    if patch == {}:
        return "unchanged"
    patch.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = (
        _recorded(manifest)
    )
    cluster.patch(kind, namespace, name, patch)
    return "patched"


def prune(cluster: Cluster, namespace: str, service: str, keep: set[tuple[str, str]],
          kinds: Iterable[Kind] = (DEPLOYMENTS, SERVICES, HTTPROUTES)) -> list[str]:
    """Delete labelled children of `service` that are not in ``keep`` ((kind, name)
    pairs): a pool removed from the spec, routing turned off."""
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
                    keep: set[tuple[str, str]] | None = None) -> dict[str, str]:
    """Converge every child; returns '<Kind>/<name>' -> what happened. With ``keep``
    (the (kind, name) of every child the spec wants), children not in it are deleted."""
    adopt(children)
    outcome = {
        f"{m['kind']}/{m['metadata']['name']}": apply_child(cluster, namespace, m)
        for m in children
    }
    if keep is not None:
        for removed in prune(cluster, namespace, service, keep):
            outcome[removed] = "deleted"
    return outcome


def converge_children(cluster: Cluster, namespace: str, service: str, spec: TTSServiceSpec,
                      adopt: Adopt) -> dict[str, str]:
    """The lifecycle handler's work: create the children and converge their shape to
    the spec, and delete those it no longer wants. Replicas and route weights are the
    tick's."""
    return ensure_children(cluster, namespace, service, render_children(service, spec), adopt,
                           keep=owned_children(service, spec))
