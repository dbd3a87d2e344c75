"""The parser of TTSService specs, derived from the model's field metadata.

It applies defaults, collects every problem it finds rather than stopping at the first,
and starts each message with the field's path (``spec.pools.gpu-spot.fallbackTo: ...``).
Hostile input gets one line too: non-finite or absurd numbers fail their bounds, deep
or huge pass-through objects are refused, and YAML is read with a bounded depth.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from elastic_tts.policy.durations import MAX_LENGTH as DURATION_MAX_LENGTH
from elastic_tts.policy.durations import parse_duration
from elastic_tts.policy.spec.fields import (
    NON_BLANK,
    Duration,
    Enum,
    Field,
    Free,
    ListOf,
    MapOf,
    Meta,
    Record,
    Scalar,
    Shape,
    fields_of,
    rules_of,
    show,
)
from elastic_tts.policy.spec.model import API_VERSION, KIND, TTSServiceSpec, child_name_problems

MAX_DEPTH = 32  # levels inside a pass-through object (affinity, resources, tolerations)
MAX_FREE_VALUES = 10_000  # values inside one pass-through object
FAILED: Any = object()  # a value that did not parse; its problem is already recorded


class SpecError(ValueError):
    """A TTSService spec that cannot be used. ``problems`` holds one line per field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class _Context:
    problems: list[str]
    names: dict[str, frozenset[str]]  # a top-level map's field name -> its keys

    def fail(self, where: str, message: str) -> Any:
        self.problems.append(f"{where}: {message}")
        return FAILED


def parse_spec(data: object, path: str = "spec", *, name: str | None = None,
               source: str | None = None) -> TTSServiceSpec:
    """Build a spec from a mapping: either the whole resource or just its ``spec``. With
    the resource's ``name`` (given, or from its metadata), child names are checked too.
    A document that is no TTSService at all (another kind, a chart's values) is told so
    in one line naming ``source`` (default: ``path``), not field by field."""
    where = source or path
    if not isinstance(data, Mapping):
        raise SpecError([f"{path}: must be a mapping, got {show(data)}"])
    if "kind" in data or "apiVersion" in data:
        kind, api_version = data.get("kind"), data.get("apiVersion")
        if kind != KIND:
            raise SpecError([f"{where}: not a TTSService: kind is {show(kind)}, expected "
                             f"{KIND}" if kind is not None else
                             f"{where}: not a TTSService: it has apiVersion "
                             f"{show(api_version)} and no kind"])
        if api_version is not None and api_version != API_VERSION:
            raise SpecError([f"apiVersion: expected {API_VERSION}, got {show(api_version)}"])
        metadata = data.get("metadata")
        if name is None and isinstance(metadata, Mapping):
            found = metadata.get("name")
            name = found if isinstance(found, str) else None
        if data.get("spec") is None:
            raise SpecError([f"{path}: is required"])
        data = data["spec"]
        if not isinstance(data, Mapping):
            raise SpecError([f"{path}: must be a mapping, got {show(data)}"])
    known = {f.name for f in fields_of(TTSServiceSpec)}
    keys = [k for k in data if isinstance(k, str)]
    unknown = [k for k in keys if k not in known]
    if data and (not known.intersection(keys) or ("pools" not in data and unknown)):
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more"
                                          if len(unknown) > 5 else "")
        raise SpecError([f"{where}: not a TTSService spec: it has no kind: {KIND} and no "
                         f"pools, and fields no TTSService has ({shown or 'none'})"])
    names = {f.name: frozenset(k for k in data.get(f.name) or () if isinstance(k, str))
             for f in fields_of(TTSServiceSpec)
             if isinstance(f.shape, MapOf) and isinstance(data.get(f.name), Mapping)}
    context = _Context([], names)
    spec = _record(TTSServiceSpec, data, path, context)
    if name is not None and spec is not FAILED:
        context.problems += child_name_problems(name, spec.pools)
    if context.problems:
        raise SpecError(context.problems)
    assert isinstance(spec, TTSServiceSpec)
    return spec


def _record(cls: type, raw: object, path: str, ctx: _Context, key: str | None = None) -> Any:
    if not isinstance(raw, Mapping):
        return ctx.fail(path, f"must be a mapping, got {show(raw)}")
    fields = fields_of(cls)
    allowed = sorted(f.name for f in fields if not f.meta.from_key)
    for name in raw:
        if name not in allowed:
            ctx.fail(f"{path}.{name}" if isinstance(name, str) else path,
                     f"unknown field {'' if isinstance(name, str) else show(name) + ' '}"
                     f"(allowed: {', '.join(allowed)})")
    before = len(ctx.problems)
    values: dict[str, Any] = {}
    for field in fields:
        if field.meta.from_key:
            values[field.attr] = key
            continue
        value = raw.get(field.name)
        if value is None:  # absent; the API server prunes nulls the same way
            if field.required:
                ctx.fail(f"{path}.{field.name}", "is required")
            elif field.meta.default_by is None:
                values[field.attr] = field.default if not field.optional else None
            continue
        parsed = _value(field, field.shape, value, f"{path}.{field.name}", ctx)
        if parsed is not FAILED:
            values[field.attr] = parsed
    for field in fields:
        if field.meta.default_by is not None and field.attr not in values:
            source, table = field.meta.default_by
            if source in values and raw.get(field.name) is None:
                values[field.attr] = table[values[source]]
    for rule in rules_of(cls):
        for where, message in rule.check(cls, values):
            ctx.fail(f"{path}.{where}", message)
    if len(ctx.problems) > before:
        return FAILED
    return cls(**values)


def _value(field: Field, shape: Shape, value: object, where: str, ctx: _Context) -> Any:
    meta = field.meta
    if isinstance(shape, Record):
        return _record(shape.cls, value, where, ctx)
    if isinstance(shape, Scalar):
        return _scalar(shape.py, meta, value, where, ctx)
    if isinstance(shape, Enum):
        if value not in shape.values:
            return ctx.fail(where, f"must be one of {', '.join(shape.values)}, got {show(value)}")
        return value
    if isinstance(shape, Duration):
        return _duration(meta, value, where, ctx)
    if isinstance(shape, Free):
        copied = _free(value, where, ctx)
        return None if copied == {} and field.optional else copied
    if isinstance(shape, ListOf):
        return _list(field, shape, value, where, ctx)
    return _map(field, shape, value, where, ctx)


def _bounds(meta: Meta, value: float, where: str, ctx: _Context) -> bool:
    low, high = meta.minimum, meta.maximum
    if low is not None and (value <= low if meta.exclusive_minimum else value < low):
        relation = "greater than" if meta.exclusive_minimum else "at least"
        ctx.fail(where, f"must be {relation} {show(low)}, got {show(value)}")
        return False
    if high is not None and value > high:
        ctx.fail(where, f"must be at most {show(high)}, got {show(value)}")
        return False
    return True


def _scalar(py: type, meta: Meta, value: object, where: str, ctx: _Context) -> Any:
    if py is bool:
        return value if isinstance(value, bool) else ctx.fail(
            where, f"must be true or false, got {show(value)}")
    if py is str:
        return _string(meta, value, where, ctx)
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None:
        kind = "a whole number" if py is int else "a number"
        return ctx.fail(where, f"must be {kind}, got {show(value)}")
    if isinstance(number, float) and not math.isfinite(number):
        return ctx.fail(where, f"must be a finite number, got {show(number)}")
    if py is int and isinstance(number, float) and not number.is_integer():
        return ctx.fail(where, f"must be a whole number, got {show(number)}")
    if not _bounds(meta, number, where, ctx):
        return FAILED
    return int(number) if py is int else float(number)


def _string(meta: Meta, value: object, where: str, ctx: _Context) -> Any:
    if not isinstance(value, str):
        return ctx.fail(where, f"must be a string, got {show(value)}")
    if meta.max_length is not None and len(value) > meta.max_length:
        return ctx.fail(where, f"must be at most {meta.max_length} characters, "
                               f"got {len(value)}")
    if meta.pattern is not None and not re.search(meta.pattern, value, re.ASCII):
        if meta.pattern == NON_BLANK:
            return ctx.fail(where, f"must not be empty or blank, got {show(value)}")
        wanted = meta.pattern_doc or f"match {meta.pattern}"
        return ctx.fail(where, f"must {wanted}, got {show(value)}")
    if meta.check is not None:
        try:
            meta.check.run(value)
        except ValueError as exc:
            return ctx.fail(where, str(exc))
    return value


def _duration(meta: Meta, value: object, where: str, ctx: _Context) -> Any:
    if isinstance(value, float | bool):
        # The CRD types durations as int-or-string; the API server refuses 1.5.
        return ctx.fail(where, f"whole seconds or a string like '90m', got {show(value)}")
    if isinstance(value, str) and len(value) > DURATION_MAX_LENGTH:
        return ctx.fail(where, f"must be at most {DURATION_MAX_LENGTH} characters")
    if isinstance(value, int) and value <= 0:
        return ctx.fail(where, f"must be positive, got {show(value)}")
    if isinstance(value, int) and not _bounds(meta, value, where, ctx):
        return FAILED
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        return ctx.fail(where, str(exc))
    return seconds if _bounds(meta, seconds, where, ctx) else FAILED


def _free(value: object, where: str, ctx: _Context) -> Any:
    """A plain copy of a pass-through object: JSON values only, bounded in depth and size
    (YAML aliases can make a small file describe a huge tree)."""
    if not isinstance(value, Mapping):
        return ctx.fail(where, f"must be a mapping, got {show(value)}")
    budget = [MAX_FREE_VALUES]

    def copy(node: object, depth: int) -> object:
        budget[0] -= 1
        if budget[0] < 0:
            raise _Refused(f"more than {MAX_FREE_VALUES} values")
        if depth > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, Mapping):
            if not all(isinstance(k, str) for k in node):
                raise _Refused("keys must be strings")
            return {k: copy(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [copy(v, depth + 1) for v in node]
        if isinstance(node, float) and not math.isfinite(node):
            raise _Refused(f"holds a non-finite number ({show(node)})")
        if node is None or isinstance(node, str | int | float):
            return node
        raise _Refused(f"holds {show(node)}, which is not a JSON value")

    try:
        return copy(value, 1)
    except _Refused as exc:
        return ctx.fail(where, str(exc))


class _Refused(Exception):
    """A value a field's own check refused; its message names the problem."""


def _list(field: Field, shape: ListOf, value: object, where: str, ctx: _Context) -> Any:
    meta = field.meta
    if not isinstance(value, list | tuple):
        return ctx.fail(where, f"must be a list, got {show(value)}")
    if meta.max_items is not None and len(value) > meta.max_items:
        return ctx.fail(where, f"at most {meta.max_items} items, got {len(value)}")
    before = len(ctx.problems)
    items = [_value(field, shape.item, item, f"{where}[{i}]", ctx) for i, item in enumerate(value)]
    if meta.list_key is not None:
        seen: set[object] = set()
        for index, item in enumerate(items):
            if item is FAILED:
                continue
            unique = getattr(item, meta.list_key)
            if unique in seen:
                ctx.fail(f"{where}[{index}].{meta.list_key}",
                         f"duplicate {meta.list_key} {show(unique)}")
            seen.add(unique)
    return FAILED if len(ctx.problems) > before else tuple(items)


def _map(field: Field, shape: MapOf, value: object, where: str, ctx: _Context) -> Any:
    meta = field.meta
    if not isinstance(value, Mapping):
        return ctx.fail(where, f"must be a mapping, got {show(value)}")
    if len(value) < meta.min_items:
        return ctx.fail(where, f"must have at least {meta.min_items} entry")
    if meta.max_items is not None and len(value) > meta.max_items:
        return ctx.fail(where, f"at most {meta.max_items} entries, got {len(value)}")
    before = len(ctx.problems)
    parsed: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _key_ok(meta, key):
            ctx.fail(f"{where}.{key}" if isinstance(key, str) and len(key) <= 100 else where,
                     f"{meta.key_doc}, at most {meta.key_max_length} characters"
                     if meta.key_pattern else f"keys must be strings, got {show(key)}")
            continue
        if meta.names is not None and key not in ctx.names.get(meta.names, frozenset()):
            ctx.fail(f"{where}.{key}", f"spec.{meta.names} has no entry of that name")
            continue
        if isinstance(shape.value, Record):
            parsed[key] = _record(shape.value.cls, item, f"{where}.{key}", ctx, key)
        else:
            parsed[key] = _value(field, shape.value, item, f"{where}.{key}", ctx)
    return FAILED if len(ctx.problems) > before else parsed


def _key_ok(meta: Meta, key: str) -> bool:
    if meta.key_max_length is not None and not 0 < len(key) <= meta.key_max_length:
        return False
    return meta.key_pattern is None or re.fullmatch(meta.key_pattern, key, re.ASCII) is not None


# --- YAML -----------------------------------------------------------------------------

MAX_YAML_DEPTH = 64


class _DepthError(yaml.YAMLError):
    def __init__(self, path: list[object]) -> None:
        shown = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path[:8])
        super().__init__(f"{shown.replace('.[', '[')}...: nested deeper than "
                         f"{MAX_YAML_DEPTH} levels")


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses deep nesting (it recurses per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[object] = []

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # PyYAML keeps the last of two equal keys without a word; the API server refuses
        # them (strict decoding), and a silently lost value is worse than an error.
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key != "<<":
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key[:60]!r}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)

    def compose_node(self, parent: Any, index: Any) -> Any:
        segment = index.value if isinstance(index, yaml.ScalarNode) else index
        self._path.append(segment)
        try:
            if len(self._path) > MAX_YAML_DEPTH:
                raise _DepthError([p for p in self._path if p is not None])
            return super().compose_node(parent, index)
        finally:
            self._path.pop()


# YAML 1.2 (and JSON, and the API server) read 1e3 as a number; PyYAML's YAML 1.1 rules
# need a dot, and would hand "throughput: 1e3" to the model as a string.
_BoundedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))

MAX_DOCUMENTS = 100


def load_spec(text: str, source: str = "spec") -> TTSServiceSpec:
    """Parse YAML text into a spec. ``source`` names it in errors. A file of several
    documents (a kubectl bundle) is fine when exactly one of them is a TTSService."""
    try:
        loader = _BoundedLoader(text)
        try:
            documents: list[Any] = []
            while loader.check_data():  # type: ignore[no-untyped-call]
                if len(documents) == MAX_DOCUMENTS:
                    raise SpecError([f"{source}: more than {MAX_DOCUMENTS} YAML documents"])
                documents.append(loader.get_data())
        finally:
            loader.dispose()
    except _DepthError as exc:
        raise SpecError([f"{source}: {exc}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        detail = getattr(exc, "problem", None)
        raise SpecError([f"{source}: not valid YAML{where}" + (f": {detail}" if detail else "")]
                        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        if isinstance(exc, SpecError):
            raise
        raise SpecError([f"{source}: unreadable value: {str(exc)[:120]}"]) from None
    documents = [d for d in documents if d is not None]
    if len(documents) > 1:
        ours = [d for d in documents if isinstance(d, Mapping) and d.get("kind") == KIND]
        if len(ours) != 1:
            count = f"{len(ours)} of its" if ours else "none of its"
            raise SpecError([f"{source}: {count} {len(documents)} YAML documents "
                             f"{'are TTSServices' if ours else 'is a TTSService'}; give a "
                             "file with one"])
        documents = ours
    if not documents:
        raise SpecError([f"{source}: is empty"])
    data = documents[0]
    if not isinstance(data, Mapping):
        raise SpecError([f"{source}: the YAML must be a mapping, got {show(data)}"])
    return parse_spec(data, source=source)
