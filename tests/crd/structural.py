"""Validate objects against a CRD's schema the way the API server does, as far as Python can.

What is checked, and with what:
- OpenAPI v3 value validation with jsonschema's Draft 4 validator (Kubernetes' OpenAPI v3
  keeps Draft 4's boolean ``exclusiveMinimum``), after translating the Kubernetes
  extensions: ``x-kubernetes-int-or-string`` becomes "integer or string", and every object
  with ``properties`` and no ``x-kubernetes-preserve-unknown-fields`` gets
  ``additionalProperties: false``, as strict field validation (kubectl's default) rejects
  unknown fields;
- ``default:`` values, applied top-down as structural defaulting does before CEL runs;
- ``x-kubernetes-list-type: map``: the list-map keys must be unique;
- ``nullable: true`` becomes "or null";
- ``x-kubernetes-validations``: each CEL rule evaluated by cel-python on the defaulted
  object, at the node that declares it.

Not emulated: the API server's CEL cost estimation, and its pruning of null values.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import celpy
import jsonschema

Schema = dict[str, Any]


def to_jsonschema(schema: Schema) -> Schema:
    """A plain JSON Schema (Draft 4) with the same meaning as a structural schema."""
    out: Schema = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("default", "nullable"):
            continue
        if key == "properties":
            out[key] = {name: to_jsonschema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_jsonschema(value)
        else:
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in schema and "additionalProperties" not in schema and not preserve:
        out["additionalProperties"] = False
    return out


def _where(path: Iterator[Any] | list[Any]) -> str:
    return ".".join(str(p) for p in path) or "<root>"


def schema_errors(schema: Schema, obj: Any) -> list[str]:
    validator = jsonschema.Draft4Validator(to_jsonschema(schema))
    return [
        f"{_where(list(e.absolute_path))}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))
    ]


def apply_defaults(schema: Schema, obj: Any) -> Any:
    """A copy of ``obj`` with the schema's defaults filled in, outermost first."""
    obj = copy.deepcopy(obj)
    _default_in_place(schema, obj)
    return obj


def _default_in_place(schema: Schema, obj: Any) -> None:
    if isinstance(obj, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in obj and "default" in sub:
                obj[name] = copy.deepcopy(sub["default"])
            if name in obj:
                _default_in_place(sub, obj[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, value in obj.items():
                if key not in schema.get("properties", {}):
                    _default_in_place(extra, value)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            _default_in_place(schema["items"], item)


def _nodes(schema: Schema, obj: Any, path: list[str]) -> Iterator[tuple[Schema, Any, list[str]]]:
    """Every (schema, value, path) pair in the object, parents before children."""
    yield schema, obj, path
    if isinstance(obj, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from _nodes(sub, value, [*path, str(key)])
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(obj):
            yield from _nodes(schema["items"], item, [*path, str(index)])


def list_map_errors(schema: Schema, obj: Any) -> list[str]:
    errors = []
    for node, value, path in _nodes(schema, obj, []):
        if node.get("x-kubernetes-list-type") != "map" or not isinstance(value, list):
            continue
        keys = node.get("x-kubernetes-list-map-keys", [])
        seen: set[tuple[Any, ...]] = set()
        for item in value:
            key = tuple(item.get(k) for k in keys) if isinstance(item, dict) else (item,)
            if key in seen:
                errors.append(f"{_where(path)}: duplicate value for {keys}: {key}")
            seen.add(key)
    return errors


_CEL = celpy.Environment()
_PROGRAMS: dict[str, celpy.Runner] = {}


def _program(rule: str) -> celpy.Runner:
    if rule not in _PROGRAMS:
        _PROGRAMS[rule] = _CEL.program(_CEL.compile(rule))
    return _PROGRAMS[rule]


def cel_rules(schema: Schema) -> list[dict[str, str]]:
    """Every x-kubernetes-validations entry anywhere in the schema."""
    found = list(schema.get("x-kubernetes-validations", []))
    for sub in schema.get("properties", {}).values():
        found += cel_rules(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += cel_rules(schema[key])
    return found


def cel_errors(schema: Schema, obj: Any) -> list[str]:
    """Messages of the CEL rules that fail (or cannot be evaluated) on ``obj``."""
    errors = []
    for node, value, path in _nodes(schema, obj, []):
        for validation in node.get("x-kubernetes-validations", []):
            try:
                result = _program(validation["rule"]).evaluate({"self": celpy.json_to_cel(value)})
            except celpy.CELEvalError as exc:
                errors.append(f"{_where(path)}: {validation['message']} (error: {exc.args[0]})")
                continue
            if not result:
                errors.append(f"{_where(path)}: {validation['message']}")
    return errors


def _with_object_meta(schema: Schema) -> Schema:
    """The API server always allows apiVersion, kind and metadata at a resource's root."""
    implicit = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
    }
    return {**schema, "properties": {**implicit, **schema.get("properties", {})}}


def validate(schema: Schema, obj: Any) -> list[str]:
    """Every reason the API server would refuse the resource ``obj`` (validated against
    its CRD's openAPIV3Schema); empty when it would accept it.

    CEL runs only on schema-valid objects: the object is refused either way, and a rule
    then never trips over a value of the wrong type.
    """
    schema = _with_object_meta(schema)
    errors = schema_errors(schema, obj)
    if errors:
        return errors
    defaulted = apply_defaults(schema, obj)
    return list_map_errors(schema, defaulted) + cel_errors(schema, defaulted)
