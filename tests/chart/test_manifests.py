"""manifests/: the kubectl bundle is current, complete and valid; generation notices drift."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import yaml

from tests.chart import chart_files as cf
from tests.crd import crd_files


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate", cf.ROOT / "manifests/generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATE = _generator()


def test_generated_files_are_up_to_date() -> None:
    assert GENERATE.stale_files(cf.ROOT) == [], "run `make manifests`"


def test_a_changed_crd_makes_the_copies_stale(tmp_path: Path) -> None:
    for folder in ("crds", "charts", "manifests"):
        shutil.copytree(cf.ROOT / folder, tmp_path / folder)
    crd = tmp_path / "crds" / "ttsservice.yaml"
    crd.write_text(crd.read_text().replace("shortNames: [tts]", "shortNames: [tts, ttss]"))
    assert GENERATE.stale_files(tmp_path) == [GENERATE.CRD_COPY]
    # Once the copy is refreshed, the bundle rendered from the chart is what lags.
    shutil.copy(crd, tmp_path / GENERATE.CRD_COPY)
    assert GENERATE.stale_files(tmp_path) == [GENERATE.INSTALL]


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
