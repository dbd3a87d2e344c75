"""Generated files (`make manifests`) are current; the kubectl bundle is complete and
valid; generation notices drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from elastic_tts_dev import crd as crd_model
from elastic_tts_dev import generate
from tests.chart import chart_files as cf
from tests.crd import crd_files


def test_generated_files_are_up_to_date() -> None:
    assert generate.stale_files(cf.ROOT) == [], "run `make manifests`"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for folder in ("crds", "charts", "manifests", "docs"):
        shutil.copytree(cf.ROOT / folder, tmp_path / folder)
    return tmp_path


def test_a_hand_edit_of_a_generated_file_is_stale(tree: Path) -> None:
    for path in (generate.CRD, generate.REFERENCE, generate.EXAMPLES / "full.yaml"):
        target = tree / path
        original = target.read_text()
        target.write_text(original.replace("0.7", "0.75", 1))
        assert generate.stale_files(tree) == [path]
        target.write_text(original)


def test_a_changed_model_makes_the_crd_its_copy_and_the_bundle_stale(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crd_model, "SHORT_NAMES", ["tts", "ttss"])
    assert generate.stale_files(tree) == [generate.CRD, generate.CRD_COPY]
    # Once the chart's copy is refreshed, the bundle rendered from the chart is what lags.
    (tree / generate.CRD_COPY).write_text(crd_model.crd_yaml())
    assert generate.stale_files(tree) == [generate.CRD, generate.INSTALL]


def _install() -> list[dict]:
    return list(yaml.safe_load_all((cf.ROOT / "manifests/install.yaml").read_text("utf-8")))


def test_install_yaml_has_everything_in_apply_order() -> None:
    kinds = [d["kind"] for d in _install()]
    assert kinds == [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Service",
        "Deployment",
    ]


def test_install_yaml_objects_are_valid() -> None:
    assert [e for e in map(cf.kube_errors, _install()) if e] == []


def test_install_yaml_is_not_helm_managed_and_lives_in_its_namespace() -> None:
    for doc in _install():
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "elastic-tts"
        assert "helm.sh/chart" not in labels
        assert "helm.sh/resource-policy" not in doc["metadata"].get("annotations", {})
        if doc["kind"] in {"ServiceAccount", "Service", "Deployment"}:
            assert doc["metadata"]["namespace"] == "elastic-tts"
    (crd,) = [d for d in _install() if d["kind"] == "CustomResourceDefinition"]
    assert crd["spec"] == crd_files.crd()["spec"]


def test_examples_cover_minimal_full_and_cpu_only() -> None:
    names = {p.stem for p in crd_files.EXAMPLES}
    assert {"minimal", "full", "cpu-only"} <= names
    full = crd_files.load_example(crd_files.ROOT / "manifests/examples/full.yaml")["spec"]
    kinds = {(p["accelerator"], p.get("capacityType", "on-demand")) for p in full["pools"].values()}
    assert kinds == {("gpu", "on-demand"), ("gpu", "spot"), ("cpu", "on-demand")}
    assert full["schedule"]["timezone"] == "Asia/Shanghai" and full["schedule"]["prewarm"]
    assert {w.get("mode", "normal") for w in full["schedule"]["windows"]} == {"normal", "shutdown"}
    assert full["routing"]["enabled"] is True
