"""Render the chart with Helm's own Go SDK (helm-python-sdk), and validate Kubernetes
objects with kubernetes-validate, for the tests in this folder."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

from elastic_tts_dev.binaries import cache_base  # the Makefile's ELASTIC_TTS_CACHE
from tests.crd.crd_files import ROOT

CHART = ROOT / "charts" / "elastic-tts"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBE_VERSION = "1.35"  # a current Kubernetes release; the chart needs >= 1.29
RELEASE, NAMESPACE = "elastic-tts", "elastic-tts"

# Kinds kubernetes-validate has no schema for, and where their schema comes from instead.
PROMETHEUS_OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
KOPF_KINDS = {"ClusterKopfPeering", "KopfPeering"}


def load_values(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return dict(loaded or {})


@cache
def _render(values_json: str) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        rendered: dict[str, str] = chart.render(
            json.loads(values_json), name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    return rendered


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text."""
    return _render(json.dumps(values or {}, sort_keys=True))


def objects(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    docs = []
    for template, text in sorted(render(values).items()):
        if not template.endswith("NOTES.txt"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def kube_errors(obj: dict[str, Any]) -> str | None:
    """Why the Kubernetes API (in strict field validation) would refuse ``obj``, or None."""
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{obj['kind']}/{obj['metadata'].get('name')}: {exc.message}"
    return None


def chart_crds() -> list[dict[str, Any]]:
    """The CRDs in the chart's crds/ folder (kopf's peering resources)."""
    with helm.Chart.load(CHART) as chart:
        texts = [c["data"] for c in chart.crds]
    return [d for text in texts for d in yaml.safe_load_all(text) if d]


def render_chart(path: Path, values: dict[str, Any], name: str = RELEASE,
                 namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Render any chart (a parent, a packaged .tgz) with real Helm; objects, no NOTES."""
    with helm.Chart.load(path) as chart:
        rendered = chart.render(values, name=name, namespace=namespace, is_install=True)
    return [d for template, text in sorted(rendered.items()) if not template.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]


def helm_docs() -> Path:
    """The helm-docs binary `make tools` builds (the version pinned in the Makefile)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(r"^HELM_DOCS_VERSION := (\S+)$", makefile, re.M)
    assert found, "the Makefile pins HELM_DOCS_VERSION"
    binary = cache_base() / "tools" / f"helm-docs-{found.group(1)}" / "helm-docs"
    if not binary.exists():
        import pytest

        pytest.fail(f"{binary} missing: `make tools` builds helm-docs through the Go proxy")
    return binary


@cache
def worker_metrics_port() -> str:
    """The name of the container port the operator's worker Deployment serves /metrics on:
    the port its prometheus.io/port annotation names (the worker's probe listener, which
    TTS_PROBE_BIND binds). Every scrape configuration of the workers must select it."""
    from elastic_tts.policy import parse_spec
    from elastic_tts.reconcile.render import render_deployment
    from elastic_tts_dev.specs import tts

    spec = parse_spec(tts("reader", "http://prometheus.example"))
    pool = next(iter(spec.pools.values()))
    template = render_deployment("reader", spec, pool)["spec"]["template"]
    number = int(template["metadata"]["annotations"]["prometheus.io/port"])
    (container,) = template["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["TTS_PROBE_BIND"].rpartition(":")[2]) == number
    (name,) = [p["name"] for p in container["ports"] if p["containerPort"] == number]
    return str(name)
