"""The defaults shown in the example TTSServices (manifests/examples/), kept true.

A value whose line ends in ``# default`` states the model's default for that field, to
show what a user may leave out. `make manifests` rewrites such values from the model, so
an example never shows a default that has changed.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from elastic_tts.policy.spec.fields import ListOf, MapOf, Record, fields_of
from elastic_tts.policy.spec.model import TTSServiceSpec

MARK = re.compile(r"#\s*default\b")


class NoDefault(LookupError):
    """A line marked `# default` names a field the spec model gives no default."""


def default_at(path: list[str | int]) -> Any:
    """The model's default for the field at ``path`` in a TTSService resource."""
    if path[:1] != ["spec"]:
        raise NoDefault(".".join(map(str, path)))
    cls: type = TTSServiceSpec
    rest = path[1:]
    while rest:
        name, *rest = rest
        field = next((f for f in fields_of(cls) if f.name == name), None)
        if field is None:
            raise NoDefault(name)
        shape = field.shape
        if isinstance(shape, ListOf | MapOf) and rest:
            rest = rest[1:]  # the index or key
            shape = shape.item if isinstance(shape, ListOf) else shape.value
        if not rest:
            if field.required or field.optional or field.meta.default_by is not None:
                raise NoDefault(name)
            return field.default
        if not isinstance(shape, Record):
            raise NoDefault(name)
        cls = shape.cls
    raise NoDefault("spec")


def _marked(node: yaml.Node, path: list[str | int], lines: list[str]
            ) -> list[tuple[yaml.ScalarNode, list[str | int]]]:
    found = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            found += _marked(value, [*path, key.value], lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found += _marked(item, [*path, index], lines)
    elif isinstance(node, yaml.ScalarNode):
        line = lines[node.end_mark.line][node.end_mark.column:]
        if MARK.search(line):
            found.append((node, path))
    return found


def with_defaults(text: str) -> str:
    """``text`` with each value marked ``# default`` set to the model's default."""
    lines = text.splitlines(keepends=True)
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return text
    for node, path in reversed(_marked(root, [], lines)):
        value = default_at(path)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # as the CRD states it: 5, not 5.0
        shown = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...")
        shown = shown.strip()
        start, end = node.start_mark, node.end_mark
        line = lines[start.line]
        width = end.column - start.column
        lines[start.line] = line[:start.column] + shown.ljust(width) + line[end.column:] \
            if len(shown) <= width else line[:start.column] + shown + line[end.column:]
    return "".join(lines)
