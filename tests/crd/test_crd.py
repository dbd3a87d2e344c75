"""The generated CRD: a bounded structural schema whose defaults and CEL rules mean what
the spec model means.

The CRD is generated from the model (`make manifests`; tests/chart/test_manifests.py
fails when it is stale), so its fields, enums and bounds agree with the model by
construction. What is left to prove is checked here: that the schema stays within what
the API server accepts, that its defaulting and its CEL rules (run by cel-python) agree
with the parser, and that the rules only the operator can check are the ones the docs
list.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celpy
import pytest

from elastic_tts.policy.spec import SpecError, parse_spec
from tests.crd import crd_files, structural

_FULL = crd_files.load_example(crd_files.ROOT / "manifests" / "examples" / "full.yaml")


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    for key, suffix in (("items", "[]"), ("additionalProperties", ".*")):
        if isinstance(schema.get(key), dict):
            yield from _nodes(schema[key], path + suffix)


def test_every_value_in_the_spec_is_bounded() -> None:
    """The API server estimates each CEL rule's cost from these bounds, and refuses the
    CRD when a rule could run over an unbounded list, map or string."""
    for path, node in _nodes(crd_files.spec_schema(), "spec"):
        kind = node.get("type")
        if kind in ("integer", "number"):
            assert "minimum" in node and "maximum" in node, path
        elif kind == "string":
            assert "maxLength" in node or "enum" in node, path
        elif kind == "array":
            assert "maxItems" in node, path
        elif kind == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path
        elif node.get("x-kubernetes-int-or-string"):
            assert {"minimum", "maximum", "maxLength"} <= set(node), path


def test_the_schema_is_structural() -> None:
    for path, node in _nodes(crd_files.root_schema()):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        if node.get("x-kubernetes-list-type") == "map":
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"]["required"])


@pytest.mark.parametrize("rule", structural.cel_rules(crd_files.root_schema()),
                         ids=lambda r: r["message"])
def test_every_cel_rule_compiles(rule: dict[str, str]) -> None:
    celpy.Environment().compile(rule["rule"])
    assert rule.get("fieldPath", ".").startswith(".")


def _model(resource: dict[str, Any]) -> list[str]:
    try:
        parse_spec(resource)
    except SpecError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize("path", crd_files.EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_both_and_defaulting_means_the_same(path: Path) -> None:
    resource = crd_files.load_example(path)
    assert structural.validate(crd_files.root_schema(), resource) == []
    assert _model(resource) == []
    defaulted = structural.apply_defaults(crd_files.root_schema(), resource)
    assert parse_spec(defaulted) == parse_spec(resource)


def _broken(**changes: Any) -> dict[str, Any]:
    """The full example with changes at paths under spec ("pools__gpu__minReplicas")."""
    resource = copy.deepcopy(_FULL)
    for dotted, value in changes.items():
        node = resource["spec"]
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    return resource


# One violation per CEL rule: (the rule's message, the resource, what the model names).
BY_RULE = [
    ("minReplicas must not exceed maxReplicas", _broken(pools__cpu__minReplicas=7),
     "spec.pools.cpu.minReplicas: must not exceed maxReplicas (7 > 6)"),
    ("only spot pools fall back", _broken(pools__cpu__fallbackTo="gpu"),
     "spec.pools.cpu.fallbackTo: only spot pools fall back"),
    ("fallbackReplicas is required when onMetricsUnavailable is fallbackReplicas",
     _broken(scaling__onMetricsUnavailable="fallbackReplicas"),
     "spec.scaling.fallbackReplicas: is required when onMetricsUnavailable is"),
    ("minReplicas must not exceed maxReplicas",
     _broken(schedule__windows__0__pools={"gpu": {"minReplicas": 3, "maxReplicas": 1}}),
     "spec.schedule.windows[0].pools.gpu.minReplicas: must not exceed"),
    ("gatewayRef.name is required when enabled is true", _broken(routing__gatewayRef={}),
     "spec.routing.gatewayRef.name: is required when enabled is true"),
    ("fallbackTo must name an on-demand pool of this TTSService",
     _broken(**{"pools__gpu-spot__fallbackTo": "gpu-spot"}),
     "spec.pools.gpu-spot.fallbackTo: no on-demand pool named 'gpu-spot'"),
    ("every key of scaling.fallbackReplicas must name an entry of pools",
     _broken(scaling__fallbackReplicas={"tpu": 1}),
     "spec.scaling.fallbackReplicas.tpu: spec.pools has no entry of that name"),
    ("pool names are lowercase letters, digits and '-', at most 40 characters",
     _broken(pools={"GPU_1": _FULL["spec"]["pools"]["cpu"]}, schedule={}, routing={}),
     "spec.pools.GPU_1: pool names are"),
    ("pool names are lowercase letters, digits and '-', at most 40 characters",
     _broken(pools={"a" * 41: _FULL["spec"]["pools"]["cpu"]}, schedule={}, routing={}),
     "spec.pools.aaaa"),
    ("every key of schedule.windows.pools must name an entry of pools",
     _broken(schedule__windows__0__pools={"tpu": {"minReplicas": 1}}),
     "spec.schedule.windows[0].pools.tpu: spec.pools has no entry of that name"),
]


@pytest.mark.parametrize(("message", "resource", "problem"), BY_RULE,
                         ids=[f"{i}: {row[0]}" for i, row in enumerate(BY_RULE)])
def test_each_rule_refuses_in_the_api_server_and_in_the_operator(
        message: str, resource: dict[str, Any], problem: str) -> None:
    assert structural.schema_errors(crd_files.root_schema(), resource) == []
    refused = structural.validate(crd_files.root_schema(), resource)
    assert [e for e in refused if message in e], refused
    assert any(p.startswith(problem) for p in _model(resource)), _model(resource)


def test_every_cel_rule_has_a_row() -> None:
    covered = {message for message, _, _ in BY_RULE}
    assert {r["message"] for r in structural.cel_rules(crd_files.root_schema())} == covered


# Refused by the operator only; docs/reference/ttsservice.md lists exactly these.
OPERATOR_ONLY = [
    ("timezone", _broken(schedule__timezone="Mars/Olympus"), "spec.schedule.timezone"),
    ("cron", _broken(schedule__windows__0__start="61 9 * * *"), "windows[0].start"),
    ("duration string", _broken(schedule__windows__0__duration="9000h"), "windows[0].duration"),
]


@pytest.mark.parametrize(("label", "resource", "field"), OPERATOR_ONLY,
                         ids=[row[0] for row in OPERATOR_ONLY])
def test_operator_only_checks(label: str, resource: dict[str, Any], field: str) -> None:
    assert structural.validate(crd_files.root_schema(), resource) == []
    assert any(field in p for p in _model(resource))


def test_the_reference_lists_the_operator_only_checks() -> None:
    reference = (crd_files.ROOT / "docs/reference/ttsservice.md").read_text("utf-8")
    section = reference.split("## Checked only by the operator")[1].split("\n## ")[0]
    listed = re.findall(r"^- `([^`]+)`", section, re.MULTILINE)
    assert listed == ["spec.schedule.timezone", "spec.schedule.windows[].start",
                      "spec.schedule.windows[].duration", "metadata.name"]


HOSTILE = [
    ("NaN", _broken(pools__cpu__costPerHour=float("nan")),
     "spec.pools.cpu.costPerHour: must be a finite number, got nan"),
    ("infinity", _broken(scaling__targetUtilization=float("inf")),
     "spec.scaling.targetUtilization: must be a finite number, got inf"),
    ("a 300-digit number", _broken(pools__cpu__throughput=10**300),
     "spec.pools.cpu.throughput: must be at most 1000000, got a number of about 300 digits"),
    ("1e30", _broken(pools__gpu__costPerHour=1e30),
     "spec.pools.gpu.costPerHour: must be at most 1000, got 1e+30"),
    ("a huge replica count", _broken(pools__gpu__maxReplicas=10**30),
     "spec.pools.gpu.maxReplicas: must be at most 1000"),
]


@pytest.mark.parametrize(("label", "resource", "problem"), HOSTILE, ids=[r[0] for r in HOSTILE])
def test_hostile_numbers_are_refused_by_both(label: str, resource: dict[str, Any],
                                             problem: str) -> None:
    assert _model(resource) == [problem] or any(p.startswith(problem) for p in _model(resource))
    if label not in ("NaN", "infinity"):  # JSON, and so the API server, has no NaN
        assert structural.validate(crd_files.root_schema(), resource)


def test_printer_columns_point_at_status_fields_the_schema_declares() -> None:
    columns = {c["name"]: c["jsonPath"] for c in crd_files.version()["additionalPrinterColumns"]}
    assert list(columns) == ["Mode", "GPU", "Spot", "CPU", "Load", "Cost/h", "Ready", "Age"]
    status = crd_files.root_schema()["properties"]["status"]
    for name, path in columns.items():
        if not path.startswith(".status."):
            continue
        node = status
        # A filter like [?(@.type=="Ready")] selects list items; the walk goes into items.
        for key in re.sub(r"\[\?\(.*?\)\]", "", path.removeprefix(".status.")).split("."):
            node = node["properties"][key]
            node = node.get("items", node)
        assert node, name
