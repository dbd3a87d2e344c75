"""The chart as KEDA's: a subchart, a PDB, topology spread, probes, log settings, monitors
with relabelings and their own namespace, the PrometheusRule toggle, a README that
helm-docs keeps current, and `helm package`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.chart import chart_files as cf


def _pod(values: dict[str, Any] | None = None) -> dict[str, Any]:
    (deployment,) = cf.of_kind(cf.objects(values), "Deployment")
    pod: dict[str, Any] = deployment["spec"]["template"]
    return pod


def _parent_chart(tmp_path: Path) -> Path:
    """A parent chart that depends on this one through a file:// repository, its charts/
    filled by Helm's own dependency update."""
    parent = tmp_path / "platform"
    (parent / "templates").mkdir(parents=True)
    chart = yaml.safe_load((cf.CHART / "Chart.yaml").read_text("utf-8"))
    (parent / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "platform", "version": "1.0.0",
        "dependencies": [{"name": "elastic-tts", "version": chart["version"],
                          "repository": f"file://{cf.CHART}", "alias": "tts"}],
    }))
    (parent / "values.yaml").write_text("global:\n  imageRegistry: registry.example.com\n")
    helm.dependency_update(parent)
    return parent


def test_the_chart_works_as_a_subchart_with_globals(tmp_path: Path) -> None:
    parent = _parent_chart(tmp_path)
    assert (parent / "charts" / f"elastic-tts-{cf.load_values(cf.CHART / 'Chart.yaml')['version']}"
            ".tgz").exists()
    docs = cf.render_chart(parent, {"global": {"env": "prod"},
                                    "tts": {"watch": {"namespaces": ["tts"]}}}, name="platform")
    (deployment,) = cf.of_kind(docs, "Deployment")
    assert deployment["metadata"]["name"] == "platform-tts"  # the alias names it
    assert "--namespace=tts" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    # The subchart's schema still guards its own values.
    with pytest.raises((helm.HelmRenderError, helm.HelmValuesError)) as caught:
        cf.render_chart(parent, {"tts": {"replicaCount": 9}}, name="platform")
    assert "replicaCount" in str(caught.value)


def test_the_pdb_keeps_one_of_two_peered_replicas() -> None:
    docs = cf.objects(cf.load_values(cf.CHART / "ci" / "ha-values.yaml"))
    (pdb,) = cf.of_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    pod_labels = _pod(cf.load_values(cf.CHART / "ci" / "ha-values.yaml"))["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert cf.kube_errors(pdb) is None
    assert cf.of_kind(cf.objects(), "PodDisruptionBudget") == []  # off by default


def test_pdb_min_available_is_used_and_checked() -> None:
    ha = {"replicaCount": 2, "peering": {"enabled": True}}
    (pdb,) = cf.of_kind(cf.objects({**ha, "podDisruptionBudget": {
        "enabled": True, "minAvailable": 1}}), "PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": pdb["spec"]["selector"]}
    with pytest.raises(helm.HelmRenderError) as caught:
        cf.render({"podDisruptionBudget": {"enabled": True, "minAvailable": 1}})
    assert "would block every node drain" in str(caught.value)


def test_topology_spread_gets_the_selector_labels_unless_it_has_its_own() -> None:
    own = {"matchLabels": {"team": "tts"}}
    pod = _pod({"topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
         "whenUnsatisfiable": "ScheduleAnyway"},
        {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
         "whenUnsatisfiable": "DoNotSchedule", "labelSelector": own},
    ]})
    first, second = pod["spec"]["topologySpreadConstraints"]
    assert first["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert first["labelSelector"]["matchLabels"]
    assert second["labelSelector"] == own
    assert "topologySpreadConstraints" not in _pod()["spec"]


def test_probe_settings_reach_the_container_and_can_be_turned_off() -> None:
    (container,) = _pod({"livenessProbe": {"periodSeconds": 7},
                         "readinessProbe": {"enabled": False}})["spec"]["containers"]
    assert container["livenessProbe"]["periodSeconds"] == 7
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "enabled" not in container["livenessProbe"]
    assert "readinessProbe" not in container
    (default,) = _pod()["spec"]["containers"]
    assert default["readinessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize(("level", "fmt"), [("debug", "plain"), ("error", "json")])
def test_log_settings_become_operator_flags(level: str, fmt: str) -> None:
    from elastic_tts.cli import build_parser

    (container,) = _pod({"logging": {"level": level, "format": fmt}})["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert (args.log_level, args.log_format) == (level, fmt)


@pytest.mark.parametrize("values", [{"logging": {"level": "trace"}},
                                    {"logging": {"format": "yaml"}}], ids=["level", "format"])
def test_unknown_log_settings_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        cf.render(values)
    assert "/logging/" in str(caught.value)


def test_monitors_carry_relabelings_timeouts_and_their_namespace() -> None:
    values = cf.load_values(cf.CHART / "ci" / "monitoring-values.yaml")
    docs = cf.objects(values)
    (service_monitor,) = cf.of_kind(docs, "ServiceMonitor")
    (pod_monitor,) = cf.of_kind(docs, "PodMonitor")
    assert service_monitor["metadata"]["namespace"] == "monitoring"
    assert service_monitor["spec"]["namespaceSelector"] == {"matchNames": [cf.NAMESPACE]}
    (endpoint,) = service_monitor["spec"]["endpoints"]
    assert endpoint["metricRelabelings"] == values["metrics"]["serviceMonitor"][
        "metricRelabelings"]
    assert pod_monitor["metadata"]["namespace"] == "monitoring"
    (pods,) = pod_monitor["spec"]["podMetricsEndpoints"]
    assert pods["scrapeTimeout"] == "5s"
    # The chart's own relabelings first (namespace, pod), then the user's.
    assert [r["targetLabel"] for r in pods["relabelings"]] == ["namespace", "pod", "node"]


def test_the_prometheus_rule_is_a_toggle_with_its_own_namespace_and_labels() -> None:
    assert cf.of_kind(cf.objects(), "PrometheusRule") == []
    docs = cf.objects(cf.load_values(cf.CHART / "ci" / "monitoring-values.yaml"))
    (rule,) = cf.of_kind(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert alerts and all(a["labels"]["team"] == "tts" for a in alerts)
    assert all(a["labels"]["severity"] in {"critical", "warning"} for a in alerts)


def test_the_objective_and_durations_reach_the_rules() -> None:
    values = {"prometheusRule": {"enabled": True, "slo": {"objective": 0.99},
                                 "spotFallbackFor": "45m"}}
    (rule,) = cf.of_kind(cf.objects(values), "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert "(14.4 * (1 - 0.99))" in alerts["ElasticTTSSLOBurnRateFast"]["expr"]
    assert alerts["ElasticTTSSpotFallbackTooLong"]["for"] == "45m"
    with pytest.raises(helm.HelmValuesError):
        cf.render({"prometheusRule": {"slo": {"objective": 1.5}}})


def test_the_chart_readme_is_what_helm_docs_generates(tmp_path: Path) -> None:
    """helm-docs itself renders the README from values.yaml and README.md.gotmpl, with the
    flags of `make chart-docs`; the committed README must be exactly that."""
    copy = tmp_path / "charts" / "elastic-tts"
    shutil.copytree(cf.CHART, copy)
    done = subprocess.run(
        [str(cf.helm_docs()), "--chart-search-root", str(copy.parent), "--sort-values-order",
         "file", "--skip-version-footer", "--log-level", "warning"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    generated = (copy / "README.md").read_text("utf-8")
    assert (cf.CHART / "README.md").read_text("utf-8") == generated, (
        "charts/elastic-tts/README.md is stale: run `make chart-docs`")
    makefile = (cf.ROOT / "Makefile").read_text("utf-8")
    assert "--sort-values-order file --skip-version-footer" in makefile


def test_the_chart_readme_documents_every_value() -> None:
    readme = (cf.CHART / "README.md").read_text("utf-8")
    rows = [line.split("|")[1].strip() for line in readme.splitlines()
            if line.startswith("| ") and not line.startswith("| Key")]
    values = cf.load_values(cf.CHART / "values.yaml")
    for row in rows:
        node: Any = values
        for part in row.split("."):
            node = node[part]  # every documented key exists
    assert {"global", "podDisruptionBudget.enabled", "logging.level", "prometheusRule.enabled",
            "topologySpreadConstraints", "livenessProbe"} <= set(rows)
    assert all(line.count("|") >= 5 and line.rstrip().rstrip("|").strip()
               for line in readme.splitlines() if line.startswith("| ") and "`" in line)


def test_helm_package_builds_a_chart_that_renders_like_the_folder(tmp_path: Path) -> None:
    archive = Path(helm.package(cf.CHART, destination=tmp_path))
    version = cf.load_values(cf.CHART / "Chart.yaml")["version"]
    assert archive.name == f"elastic-tts-{version}.tgz"
    values = cf.load_values(cf.CHART / "ci" / "monitoring-values.yaml")
    assert cf.render_chart(archive, values) == cf.objects(values)
    with helm.Chart.load(archive) as chart:
        names = {f["name"] for f in chart.files}
    assert "README.md" in names and "files/dashboard.json" in names


def test_make_chart_packages_into_dist() -> None:
    done = subprocess.run(["make", "-n", "chart"], cwd=cf.ROOT, capture_output=True,
                          text=True, timeout=60)
    assert "helm_python.package('charts/elastic-tts', destination='dist')" in done.stdout


def test_notes_name_the_alerts_when_they_are_on() -> None:
    notes = cf.render({"prometheusRule": {"enabled": True, "namespace": "monitoring"}})[
        "elastic-tts/templates/NOTES.txt"]
    assert "PrometheusRule elastic-tts in monitoring" in notes
    assert "PrometheusRule" not in cf.render()["elastic-tts/templates/NOTES.txt"]
