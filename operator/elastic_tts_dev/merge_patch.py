"""JSON merge patch (RFC 7386) applied as an API server applies it, for the in-memory
ports of tests/reconcile (the reconcile layer's unit tests)."""

from __future__ import annotations

from typing import Any


def apply_merge_patch(old: Any, patch: Any) -> Any:
    """RFC 7386: ``patch`` applied to ``old``. An object patch applies to an empty
    object where ``old`` is none, so its nulls are dropped at every depth."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(old) if isinstance(old, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = apply_merge_patch(merged.get(key), value)
    return merged
