"""Chart conventions: secure defaults, labels, the operator's arguments, documented and
schema-checked values, and one source for the CRD."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.chart import chart_files as cf
from tests.crd import crd_files

STANDARD_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
}


def _deployment(values: dict[str, Any] | None = None) -> dict[str, Any]:
    (deployment,) = cf.of_kind(cf.objects(values), "Deployment")
    return deployment


def test_secure_defaults() -> None:
    pod = _deployment()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_one_replica_recreates_and_two_roll_with_peering() -> None:
    single = _deployment()["spec"]
    assert (single["replicas"], single["strategy"]["type"]) == (1, "Recreate")
    ha = _deployment(cf.load_values(cf.CHART / "ci" / "ha-values.yaml"))["spec"]
    assert (ha["replicas"], ha["strategy"]["type"]) == (2, "RollingUpdate")


def test_replicas_name_their_pod_as_kopf_peering_identity(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """kopf reads POD_ID (nothing reads POD_NAME): with it, the peering object names the pod
    of each replica, so `kubectl get clusterkopfpeering -o yaml` shows which one acts."""
    from kopf._core.engines.peering import detect_own_id

    (container,) = _deployment()["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    monkeypatch.setenv("POD_ID", "elastic-tts-7d9f-abcde")
    assert detect_own_id(manual=False) == "elastic-tts-7d9f-abcde"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, ["run", "--all-namespaces", "--standalone"]),
        ({"peering": {"enabled": True}}, ["run", "--all-namespaces", "--peering=elastic-tts"]),
        (
            {"watch": {"namespaces": ["a", "b"]}, "peering": {"enabled": True, "name": "p"}},
            ["run", "--namespace=a", "--namespace=b", "--peering=p"],
        ),
    ],
    ids=["standalone", "peered", "namespaced"],
)
def test_operator_arguments(values: dict[str, Any], expected: list[str]) -> None:
    (container,) = _deployment(values)["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [*expected, "--liveness=http://0.0.0.0:8080/healthz",
                                 "--metrics-port=9100", "--log-level=info", "--log-format=full"]


def test_namespaced_peering_has_one_peering_object_per_namespace() -> None:
    docs = cf.objects(cf.load_values(cf.CHART / "ci" / "namespaced-values.yaml"))
    peerings = cf.of_kind(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["tts-prod", "tts-staging"]
    assert {p["metadata"]["name"] for p in peerings} == {"tts-operators"}


@pytest.mark.parametrize("path", cf.CI_VALUES, ids=lambda p: p.stem)
def test_standard_labels_and_stable_selectors(path: Any) -> None:
    docs = cf.objects(cf.load_values(path))
    for doc in docs:
        assert set(doc["metadata"]["labels"]) >= STANDARD_LABELS, doc["kind"]
    selector = _deployment(cf.load_values(path))["spec"]["selector"]["matchLabels"]
    assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    for service in cf.of_kind(docs, "Service"):
        assert service["spec"]["selector"] == selector


def _comment_above(lines: list[str], index: int) -> str:
    """The first line of the comment block right above line `index` (helm-docs reads a
    `# --` comment and the `#` lines after it as one description)."""
    first = ""
    for line in reversed(lines[:index]):
        if not line.strip().startswith("#"):
            break
        first = line.strip()
    return first


def _documented_leaves(text: str) -> list[tuple[str, bool]]:
    """(dotted key, documented) for every leaf of values.yaml; a `# --` comment on a key
    documents everything beneath it."""
    out: list[tuple[str, bool]] = []
    stack: list[tuple[int, str, bool]] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        found = re.match(r"^(\s*)([A-Za-z_][\w-]*):(.*)$", line)
        if not found:
            continue
        indent, key, rest = len(found.group(1)), found.group(2), found.group(3).strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = _comment_above(lines, index).startswith("# --") or any(s[2] for s in stack)
        path = ".".join([s[1] for s in stack] + [key])
        stack.append((indent, key, documented))
        if rest:  # a scalar or inline value: a leaf
            out.append((path, documented))
    return out


def test_every_value_has_a_comment() -> None:
    leaves = _documented_leaves((cf.CHART / "values.yaml").read_text(encoding="utf-8"))
    assert len(leaves) > 30
    assert [path for path, documented in leaves if not documented] == []


def test_the_comment_check_notices_an_undocumented_value() -> None:
    assert _documented_leaves("a:\n  # -- yes\n  b: 1\n  c: 2\n") == [("a.b", True), ("a.c", False)]
    assert _documented_leaves("# -- two\n# lines\nd: 1\n# not helm-docs\ne: 2\n") == [
        ("d", True), ("e", False)]


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, sub in schema.get("properties", {}).items():
        paths.add(prefix + key)
        paths |= _schema_paths(sub, f"{prefix}{key}.")
    return paths


def _value_paths(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> set[str]:
    """Keys of values.yaml down to where the schema treats a value as free-form."""
    paths = set()
    for key, value in values.items():
        paths.add(prefix + key)
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and "properties" in sub:
            paths |= _value_paths(value, sub, f"{prefix}{key}.")
    return paths


def test_the_values_schema_covers_every_value_and_accepts_the_defaults() -> None:
    schema = json.loads((cf.CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((cf.CHART / "values.yaml").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False
    assert _value_paths(values, schema) == _schema_paths(schema)


def test_the_charts_crd_file_is_a_copy_of_crds() -> None:
    copy = cf.CHART / "files" / "crds" / "ttsservice.yaml"
    assert copy.read_bytes() == crd_files.CRD_PATH.read_bytes()


@pytest.mark.parametrize("keep", [True, False])
def test_the_rendered_crd_is_the_crds_one_plus_labels(keep: bool) -> None:
    (rendered,) = cf.of_kind(cf.objects({"crds": {"keep": keep}}), "CustomResourceDefinition")
    metadata = rendered["metadata"]
    assert set(metadata.pop("labels")) >= STANDARD_LABELS
    annotations = metadata.pop("annotations", {})
    assert annotations == ({"helm.sh/resource-policy": "keep"} if keep else {})
    assert rendered == crd_files.crd()


def test_crds_install_false_leaves_the_crd_out() -> None:
    assert cf.of_kind(cf.objects({"crds": {"install": False}}), "CustomResourceDefinition") == []
