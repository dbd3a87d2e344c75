"""The vocabulary of the spec model: what a field may say about itself, and the rules that
tie fields together.

A field of a spec dataclass carries a `Meta` (made with `spec_field`): its description,
bounds, enum (from its ``Literal`` type), length limits and the checks only the operator
can make. Its type annotation says its shape. `fields_of` reads both once per class, and
everything else (the parser, the CRD's openAPIV3Schema and its CEL rules, the reference
docs) is derived from what it returns, the way controller-gen derives a Go operator's CRD
from its types.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Union

NON_BLANK = r"\S"


@dataclass(frozen=True)
class Check:
    """A rule on one value that only the operator can apply (an IANA name, a cron value):
    ``run`` raises ValueError with the problem; ``doc`` says what it checks."""

    run: Callable[[Any], object]
    doc: str


@dataclass(frozen=True)
class Meta:
    doc: str
    name: str | None = None  # the field's name in the resource, if not camelCase
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    max_length: int | None = None  # strings; with lists and maps, of each string in them
    pattern: str | None = None  # an ECMA/RE2 regex the value must contain a match of
    pattern_doc: str | None = None  # what the pattern means, for messages
    min_items: int = 0  # lists and maps
    max_items: int | None = None
    key_pattern: str | None = None  # maps: what the keys look like (checked by the operator)
    key_max_length: int | None = None
    key_doc: str | None = None
    list_key: str | None = None  # lists of records: unique by this field (a list-map)
    names: str | None = None  # maps: each key names an entry of this top-level field
    from_key: bool = False  # records in a map: filled from the map key, not the resource
    default_by: tuple[str, Mapping[str, float]] | None = None  # default depends on a field
    check: Check | None = None
    duration: bool = False  # whole seconds or a string like 1h30m
    example: object = None  # for the reference docs, where there is no default


def spec_field(doc: str, default: Any = dataclasses.MISSING, *,
               factory: Callable[[], Any] | None = None, **meta: Any) -> Any:
    """A dataclass field with its Meta. Without a default (or factory) it is required,
    unless ``default_by`` derives it."""
    info = {"spec": Meta(doc, **meta)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=info)
    return dataclasses.field(default=default, metadata=info)


# --- the shapes a field can have --------------------------------------------------------


@dataclass(frozen=True)
class Scalar:
    py: type  # bool, int, float or str


@dataclass(frozen=True)
class Enum:
    values: tuple[str, ...]


@dataclass(frozen=True)
class Duration:
    """Seconds, given as a number or a duration string ("90s", "5m"); parsed to seconds."""


@dataclass(frozen=True)
class Free:
    """An object passed through as it is (pod affinity, resources, a toleration)."""


@dataclass(frozen=True)
class ListOf:
    item: Shape


@dataclass(frozen=True)
class MapOf:
    value: Shape


@dataclass(frozen=True)
class Record:
    cls: type


Shape = Scalar | Enum | Duration | Free | ListOf | MapOf | Record


@dataclass(frozen=True)
class Field:
    attr: str  # the Python attribute
    name: str  # the name in the resource
    shape: Shape
    meta: Meta
    optional: bool  # may be absent with no default (None)
    default: Any  # dataclasses.MISSING when required or derived

    @property
    def required(self) -> bool:
        return (self.default is dataclasses.MISSING and not self.optional
                and self.meta.default_by is None and not self.meta.from_key)


def json_name(attr: str) -> str:
    head, *rest = attr.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _shape(hint: Any, meta: Meta) -> tuple[Shape, bool]:
    """The shape of a type annotation, and whether it allows None."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        (inner,) = args
        return _shape(inner, meta)[0], True
    if origin is Literal:
        return Enum(tuple(typing.get_args(hint))), False
    if origin in (tuple, list):
        return ListOf(_shape(typing.get_args(hint)[0], meta)[0]), False
    if origin in (Mapping, dict):
        value = typing.get_args(hint)[1]
        if value is Any:
            return Free(), False
        return MapOf(_shape(value, meta)[0]), False
    if dataclasses.is_dataclass(hint):
        return Record(hint if isinstance(hint, type) else type(hint)), False
    if hint is float and meta.duration:
        return Duration(), False
    if hint in (bool, int, float, str):
        return Scalar(hint), False
    raise TypeError(f"unsupported spec field type {hint!r}")


@cache
def fields_of(cls: type) -> tuple[Field, ...]:
    hints = typing.get_type_hints(cls)
    found = []
    for item in dataclasses.fields(cls):
        meta = item.metadata.get("spec")
        if not isinstance(meta, Meta):
            raise TypeError(f"{cls.__name__}.{item.name} has no spec_field metadata")
        shape, optional = _shape(hints[item.name], meta)
        default = item.default
        if item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        found.append(Field(item.name, meta.name or json_name(item.name), shape, meta,
                           optional, default))
    return tuple(found)


def field_named(cls: type, attr: str) -> Field:
    return next(f for f in fields_of(cls) if f.attr == attr)


def show(value: object) -> str:
    """A value for a one-line message: never huge, never a traceback of its own."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        digits = value.bit_length() * math.log10(2)
        return str(value) if digits < 16 else f"a number of about {digits:.0f} digits"
    if isinstance(value, float):
        whole = math.isfinite(value) and value.is_integer() and abs(value) < 1e15
        return str(int(value)) if whole else f"{value:g}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
    return f"a {type(value).__name__}"


# --- rules across fields ----------------------------------------------------------------
# Each states one fact once and derives both its CEL rule (for the API server) and its
# check (for the operator). ``cel`` gets the record's fields by attribute.


class Rule(ABC):
    @abstractmethod
    def cel(self, cls: type) -> dict[str, str]:
        """The rule as an x-kubernetes-validations entry of the record's schema."""

    @abstractmethod
    def check(self, cls: type, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(the field's path below the record, the problem) for each way ``values`` (by
        attribute; only the fields that parsed) break the rule."""


@dataclass(frozen=True)
class Ordered(Rule):
    """``low`` must not exceed ``high`` when both are set."""

    low: str
    high: str

    def cel(self, cls: type) -> dict[str, str]:
        low, high = field_named(cls, self.low).name, field_named(cls, self.high).name
        return {"rule": f"!has(self.{low}) || !has(self.{high}) || self.{low} <= self.{high}",
                "message": f"{low} must not exceed {high}", "fieldPath": f".{low}"}

    def check(self, cls: type, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        low, high = values.get(self.low), values.get(self.high)
        if low is None or high is None or low <= high:
            return []
        return [(field_named(cls, self.low).name,
                 f"must not exceed {field_named(cls, self.high).name} ({low} > {high})")]


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"'{value}'"


def _spoken(value: object) -> str:
    return _literal(value).strip("'")


@dataclass(frozen=True)
class OnlyWhen(Rule):
    """``field`` may be set only while ``when`` has the value ``equals``."""

    field: str
    when: str
    equals: object
    message: str

    def cel(self, cls: type) -> dict[str, str]:
        name, when = field_named(cls, self.field).name, field_named(cls, self.when).name
        return {"rule": f"!has(self.{name}) || (has(self.{when}) && "
                        f"self.{when} == {_literal(self.equals)})",
                "message": self.message, "fieldPath": f".{name}"}

    def check(self, cls: type, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        if self.when not in values or values.get(self.field) is None \
                or values[self.when] == self.equals:
            return []
        return [(field_named(cls, self.field).name, self.message)]


@dataclass(frozen=True)
class RequiredWhen(Rule):
    """``path`` (attributes, into nested records) must be set, and not empty, while
    ``when`` has the value ``equals``."""

    path: tuple[str, ...]
    when: str
    equals: object

    def _names(self, cls: type) -> list[str]:
        names, owner = [], cls
        for attr in self.path:
            found = field_named(owner, attr)
            names.append(found.name)
            if isinstance(found.shape, Record):
                owner = found.shape.cls
        return names

    def cel(self, cls: type) -> dict[str, str]:
        names = self._names(cls)
        when = field_named(cls, self.when).name
        present = " && ".join(f"has(self.{'.'.join(names[:i + 1])})" for i in range(len(names)))
        last = field_named(cls, self.path[0]) if len(self.path) == 1 else None
        if last is not None and isinstance(last.shape, MapOf | ListOf):
            present += f" && size(self.{names[0]}) > 0"
        return {"rule": f"!has(self.{when}) || self.{when} != {_literal(self.equals)} || "
                        f"({present})",
                "message": f"{'.'.join(names)} is required when {when} is "
                           f"{_spoken(self.equals)}",
                "fieldPath": f".{names[0]}"}

    def check(self, cls: type, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        if self.when not in values or values[self.when] != self.equals:
            return []
        value: Any = values.get(self.path[0])
        for attr in self.path[1:]:
            value = getattr(value, attr, None)
        if value:
            return []
        return [(".".join(self._names(cls)), f"is required when "
                 f"{field_named(cls, self.when).name} is {_spoken(self.equals)}")]


@dataclass(frozen=True)
class Stated(Rule):
    """A rule the vocabulary cannot derive, stated once in both languages beside the
    model. ``run`` returns (path below the record, problem) pairs."""

    rule: str
    message: str
    field_path: str
    run: Callable[[Mapping[str, Any]], list[tuple[str, str]]]

    def cel(self, cls: type) -> dict[str, str]:
        return {"rule": self.rule, "message": self.message, "fieldPath": self.field_path}

    def check(self, cls: type, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        return self.run(values)


def rules_of(cls: type) -> tuple[Rule, ...]:
    return tuple(getattr(cls, "RULES", ()))
