"""The generated CRD, as the real API server serves it: a bounded structural schema whose
defaults and CEL rules mean what the spec model means.

The CRD is generated from the model (`make manifests`; tests/chart/test_manifests.py
fails when it is stale), so its fields, enums and bounds agree with the model by
construction. What is left to prove is checked here, with the local cluster's API
server as the judge (a dry-run create with kubectl's strict field validation, against
the CRD the chart installed): that it accepts and serves the generated CRD, that its
defaulting and its CEL rules agree with the parser, naming the same field, and that the
rules only the operator can check are the ones the docs list.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from elastic_tts.policy.spec import SpecError, parse_spec
from elastic_tts_dev.cluster import LocalCluster
from tests.cluster.fixtures import Installation
from tests.crd import crd_files
from tests.crd.apiserver import ApiServerValidator, related

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


def cel_rules(schema: dict[str, Any]) -> list[dict[str, str]]:
    """Every x-kubernetes-validations entry anywhere in the schema."""
    found = list(schema.get("x-kubernetes-validations", []))
    for sub in schema.get("properties", {}).values():
        found += cel_rules(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += cel_rules(schema[key])
    return found


@pytest.fixture(scope="module")
def server(installed: Installation, local_cluster: LocalCluster
           ) -> Iterator[ApiServerValidator]:
    """The API server, serving exactly the CRD in crds/ (the chart installed its copy)."""
    namespace = local_cluster.create_namespace("crd-checks")
    yield ApiServerValidator(local_cluster.api, namespace)
    local_cluster.delete_namespace(namespace)


def test_the_api_server_accepts_and_serves_the_generated_crd(
        installed: Installation, local_cluster: LocalCluster) -> None:
    """The API server refuses a CRD whose schema is not structural or whose CEL rules do
    not compile or could cost too much; the chart's copy was accepted and is served."""
    served = json.loads(local_cluster.kubectl(
        "get", "crd", crd_files.crd()["metadata"]["name"], "-o", "json").stdout)
    assert served["spec"]["versions"] == json.loads(json.dumps(crd_files.crd()["spec"][
        "versions"])), "the installed CRD is not crds/ttsservice.yaml: run `make manifests`"
    conditions = {c["type"]: c["status"] for c in served["status"]["conditions"]}
    assert conditions.get("Established") == "True", conditions
    assert conditions.get("NamesAccepted") == "True", conditions
    assert "NonStructuralSchema" not in conditions, conditions
    for rule in cel_rules(crd_files.root_schema()):
        assert rule.get("fieldPath", ".").startswith("."), rule


def _model(resource: dict[str, Any]) -> list[str]:
    try:
        parse_spec(resource)
    except SpecError as exc:
        return exc.problems
    return []


@pytest.mark.parametrize("path", crd_files.EXAMPLES, ids=lambda p: p.name)
def test_examples_pass_both_and_defaulting_means_the_same(server: ApiServerValidator,
                                                         path: Path) -> None:
    """What the API server stores after defaulting means the same spec to the model."""
    resource = crd_files.load_example(path)
    verdict = server.verdict(resource)
    assert verdict.problems == []
    assert _model(resource) == []
    assert verdict.stored is not None
    assert parse_spec(verdict.stored) == parse_spec(resource)


def test_defaulting_fills_every_section_of_the_minimal_example(
        server: ApiServerValidator) -> None:
    minimal = crd_files.load_example(crd_files.ROOT / "manifests/examples/minimal.yaml")
    stored = server.verdict(minimal).stored
    assert stored is not None
    spec = stored["spec"]
    assert spec["scaling"]["prometheus"]["timeoutSeconds"] == 5
    assert spec["schedule"] == {"timezone": "UTC", "prewarm": True}
    assert spec["pools"]["cpu"]["capacityType"] == "on-demand"


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
        server: ApiServerValidator, message: str, resource: dict[str, Any],
        problem: str) -> None:
    verdict = server.verdict(resource)
    assert [m for m in verdict.messages if message in m], verdict.messages
    problems = _model(resource)
    assert any(p.startswith(problem) for p in problems), problems
    # Both name the same field, or the server the object that holds it.
    assert any(related(where, p.split(": ", 1)[0]) for where, _ in verdict.problems
               for p in problems), (verdict.messages, problems)


def test_every_cel_rule_has_a_row() -> None:
    covered = {message for message, _, _ in BY_RULE}
    assert {r["message"] for r in cel_rules(crd_files.root_schema())} == covered


# Generated from the model's types, enums and bounds (so agreeing by construction), and
# enforced by the API server's schema validation: a few of each kind, to see the server
# and the operator name the same field. Unknown fields are refused only because kubectl
# (and these checks) ask for strict field validation; without it they are dropped.
BY_SCHEMA = [
    ("unknown spec field", _broken(replicas=3), "spec.replicas: unknown field"),
    ("unknown pool field", _broken(pools__cpu__replicas=3), "spec.pools.cpu.replicas"),
    ("enum", _broken(pools__gpu__accelerator="tpu"), "spec.pools.gpu.accelerator"),
    ("required", _broken(pools__cpu={"accelerator": "cpu", "costPerHour": 0.1}),
     "spec.pools.cpu.throughput: is required"),
    ("type", _broken(pools__cpu__maxReplicas="two"), "spec.pools.cpu.maxReplicas"),
    ("fraction for an integer", _broken(pools__cpu__maxReplicas=2.5),
     "spec.pools.cpu.maxReplicas"),
    ("maximum", _broken(scaling__targetUtilization=1.5), "spec.scaling.targetUtilization"),
    ("pattern", _broken(schedule__windows__0__duration="8 hours"),
     "spec.schedule.windows[0].duration"),
    ("maxItems", _broken(schedule__windows=[
        {"name": f"w{i}", "start": "0 9 * * 1-5", "duration": "1h"} for i in range(33)]),
     "spec.schedule.windows"),
]


@pytest.mark.parametrize(("label", "resource", "problem"), BY_SCHEMA,
                         ids=[row[0] for row in BY_SCHEMA])
def test_schema_refusals_name_the_field_the_operator_names(
        server: ApiServerValidator, label: str, resource: dict[str, Any],
        problem: str) -> None:
    verdict = server.verdict(resource)
    assert verdict.problems, "the API server accepts what the model refuses"
    problems = _model(resource)
    assert any(p.startswith(problem) for p in problems), problems
    assert any(related(where, p.split(": ", 1)[0]) for where, _ in verdict.problems
               for p in problems), (verdict.messages, problems)


def test_kubectl_shows_the_field_of_every_refusal(
        server: ApiServerValidator, local_cluster: LocalCluster) -> None:
    """What a user sees: `kubectl apply` (a server-side dry run) of every refused resource
    above at once prints, for each, the field path the API server named."""
    named = {}
    for index, (_, resource, _) in enumerate(BY_RULE + BY_SCHEMA):
        named[f"invalid-{index}"] = copy.deepcopy(resource)
        named[f"invalid-{index}"]["metadata"]["name"] = f"invalid-{index}"
    done = local_cluster.kubectl(
        "apply", "--dry-run=server", "-n", server.namespace, "-f", "-", check=False,
        input=yaml.safe_dump_all(named.values()))
    assert done.returncode != 0
    # One error per object, in order (strict decoding errors do not name the object).
    errors = re.split(r"^Error from server ", done.stderr, flags=re.M)[1:]
    assert len(errors) == len(named), done.stderr[-2000:]
    for (name, resource), error in zip(named.items(), errors, strict=True):
        assert f'"{name}"' in error or "strict decoding error" in error, error
        fields = [where for where, _ in server.verdict(resource).problems if where]
        assert any(f in error for f in fields), (name, fields, error)


# Refused by the operator only; docs/reference/ttsservice.md lists exactly these.
OPERATOR_ONLY = [
    ("timezone", _broken(schedule__timezone="Mars/Olympus"), "spec.schedule.timezone"),
    ("cron", _broken(schedule__windows__0__start="61 9 * * *"), "windows[0].start"),
    ("duration string", _broken(schedule__windows__0__duration="9000h"), "windows[0].duration"),
]


@pytest.mark.parametrize(("label", "resource", "field"), OPERATOR_ONLY,
                         ids=[row[0] for row in OPERATOR_ONLY])
def test_operator_only_checks(server: ApiServerValidator, label: str,
                             resource: dict[str, Any], field: str) -> None:
    assert server.verdict(resource).messages == []
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
def test_hostile_numbers_are_refused_by_both(server: ApiServerValidator, label: str,
                                             resource: dict[str, Any], problem: str) -> None:
    assert _model(resource) == [problem] or any(p.startswith(problem) for p in _model(resource))
    if label not in ("NaN", "infinity"):  # JSON, and so the API server, has no NaN
        field = problem.split(": ", 1)[0]
        assert any(related(where, field) for where, _ in server.verdict(resource).problems)


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
