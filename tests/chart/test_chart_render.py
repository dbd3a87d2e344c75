"""The chart lints and renders with real Helm, with its defaults and every ci/ scenario,
and every object it renders is one the Kubernetes API would accept."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.chart import chart_files as cf

SCENARIOS = {"defaults": {}} | {p.stem: cf.load_values(p) for p in cf.CI_VALUES}


def test_there_are_ci_scenarios() -> None:
    assert {p.stem for p in cf.CI_VALUES} >= {"ha-values", "monitoring-values"}


@pytest.mark.parametrize("values", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_lints_clean_in_strict_mode(values: dict[str, Any]) -> None:
    report = helm.lint(cf.CHART, values, strict=True, kube_version=f"v{cf.KUBE_VERSION}.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("values", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_every_rendered_object_is_valid(values: dict[str, Any]) -> None:
    docs = cf.objects(values)
    assert cf.of_kind(docs, "Deployment"), "the operator Deployment is always rendered"
    known = [d for d in docs if d["kind"] not in cf.PROMETHEUS_OPERATOR_KINDS | cf.KOPF_KINDS]
    assert [e for e in map(cf.kube_errors, known) if e] == []


def test_the_validator_refuses_a_misspelt_field() -> None:
    (deployment,) = cf.of_kind(cf.objects(), "Deployment")
    deployment["spec"]["replica"] = 1
    assert cf.kube_errors(deployment)


def test_kopf_peering_crds_are_valid_crds() -> None:
    """The peering objects themselves are checked against these CRDs by the API server
    (tests/cluster/test_install.py installs every ci/ scenario)."""
    assert [e for e in map(cf.kube_errors, cf.chart_crds()) if e] == []
    peerings = [
        d for values in SCENARIOS.values() for d in cf.objects(values) if d["kind"] in cf.KOPF_KINDS
    ]
    assert {d["kind"] for d in peerings} == cf.KOPF_KINDS


def test_prometheus_operator_objects_have_the_shape_it_reads() -> None:
    """No schema for monitoring.coreos.com here: check the fields the operator relies on."""
    docs = cf.objects(SCENARIOS["monitoring-values"])
    (monitor,) = cf.of_kind(docs, "ServiceMonitor")
    (service,) = cf.of_kind(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [
        service["spec"]["ports"][0]["name"]
    ]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (pods,) = cf.of_kind(docs, "PodMonitor")
    assert pods["apiVersion"] == "monitoring.coreos.com/v1"
    assert pods["spec"]["namespaceSelector"] == {"any": True}
    # the worker's probe listener, the container port the operator renders for /metrics
    assert [e["port"] for e in pods["spec"]["podMetricsEndpoints"]] == [cf.worker_metrics_port()]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2}, "needs peering.enabled=true"),
        ({"replicaCount": 3, "peering": {"enabled": True}}, "/replicaCount"),
        ({"replicas": 1}, "'replicas' not allowed"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"watch": {"namespaces": ["Prod"]}}, "/watch/namespaces/0"),
        (
            {"metrics": {"serviceMonitor": {"enabled": True}, "service": {"enabled": False}}},
            "needs metrics.service.enabled=true",
        ),
    ],
    ids=["two without peering", "three", "unknown key", "pull policy", "namespace", "monitor"],
)
def test_bad_values_get_one_clear_error(values: dict[str, Any], message: str) -> None:
    with pytest.raises((helm.HelmRenderError, helm.HelmValuesError)) as caught:
        cf.render(values)
    assert message in str(caught.value)


def test_notes_tell_the_user_what_to_do_next() -> None:
    notes = cf.render()["elastic-tts/templates/NOTES.txt"]
    assert "kubectl get tts" in notes
    assert "rollout status deployment/elastic-tts" in notes


@pytest.mark.parametrize("values", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_the_operator_args_are_ones_elastic_tts_run_accepts(values: dict[str, Any]) -> None:
    from elastic_tts.cli import build_parser

    (deployment,) = cf.of_kind(cf.objects(values), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])  # exits 2 on an unknown flag
    assert args.command == "run"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert args.metrics_port == ports["metrics"]
    assert args.liveness.endswith(f":{ports['health']}/healthz")
    assert args.standalone != bool(values.get("peering", {}).get("enabled"))
