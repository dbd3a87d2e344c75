"""A spec back into the resource's plain data: the parser's inverse, derived from the same
field metadata, so that `parse_spec(resource(spec, name)) == spec` for every spec.

A value equal to its field's default (or to the default another field derives for it)
is left out, as a user would write it: the written YAML shows what was chosen, and the
operator's defaults fill the rest as they would for any hand-written TTSService.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from elastic_tts.policy.spec.fields import (
    Duration,
    Enum,
    Free,
    ListOf,
    MapOf,
    Record,
    Scalar,
    Shape,
    fields_of,
)
from elastic_tts.policy.spec.model import API_VERSION, KIND, TTSServiceSpec


def resource(spec: TTSServiceSpec, name: str, namespace: str | None = None) -> dict[str, Any]:
    """The TTSService resource `kubectl apply` takes for this spec."""
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata,
            "spec": record_data(spec)}


def record_data(record: Any) -> dict[str, Any]:
    cls: type = type(record)
    fields = fields_of(cls)
    values = {f.attr: getattr(record, f.attr) for f in fields}
    out: dict[str, Any] = {}
    for field in fields:
        value = values[field.attr]
        if field.meta.from_key or value is None:
            continue
        if field.meta.default_by is not None:
            source, table = field.meta.default_by
            if table.get(values[source]) == value:
                continue
        elif field.default is not dataclasses.MISSING and value == field.default:
            continue
        data = _data(field.shape, value)
        if data == {} and isinstance(field.shape, Record):
            continue  # a section left at its defaults
        out[field.name] = data
    return out


def _data(shape: Shape, value: Any) -> Any:
    if isinstance(shape, Record):
        return record_data(value)
    if isinstance(shape, Duration):
        return int(value)  # the parser reads durations as whole seconds only
    if isinstance(shape, Free):
        return _plain(value)
    if isinstance(shape, ListOf):
        return [_data(shape.item, item) for item in value]
    if isinstance(shape, MapOf):
        return {key: _data(shape.value, item) for key, item in value.items()}
    assert isinstance(shape, Scalar | Enum)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # 600, not 600.0: the parser reads either as the same number
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
