"""Prometheus scrape configuration for the workers: valid for promtool, and the same label
mapping as the PodMonitor, so the operator's queries work with either."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.chart import chart_files as cf
from tts_worker.metric_names import NAMESPACE_LABEL, POOL_LABEL, SERVICE_LABEL

PROM = cf.ROOT / "manifests" / "prometheus"


def _scrape_jobs() -> list[dict]:
    jobs: list[dict] = yaml.safe_load((PROM / "scrape-config.yaml").read_text("utf-8"))
    return jobs


def test_promtool_accepts_the_scrape_config(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: `make system-deps` installs the Debian prometheus package")
    # Debian builds Prometheus without Kubernetes service discovery, so its promtool does
    # not know kubernetes_sd_configs. Check that block's shape here, and let promtool check
    # the rest of the job (relabel rules and their regexes) with a static target instead.
    jobs = _scrape_jobs()
    for job in jobs:
        assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
        job["static_configs"] = [{"targets": ["127.0.0.1:8080"]}]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": jobs}))
    result = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _target_labels(relabelings: list[dict], source: str, target: str) -> dict[str, str]:
    return {r[target]: r[source][0] for r in relabelings if target in r and r.get("action") is None}


def _job(name: str) -> dict:
    (job,) = [j for j in _scrape_jobs() if j["job_name"] == name]
    return job


def test_scrape_config_and_podmonitor_label_series_alike() -> None:
    job = _job("elastic-tts-workers")
    plain = _target_labels(job["relabel_configs"], "source_labels", "target_label")
    monitor = yaml.safe_load((PROM / "podmonitor-workers.yaml").read_text("utf-8"))
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    operator = _target_labels(endpoint["relabelings"], "sourceLabels", "targetLabel")
    assert plain == operator
    assert plain == {"namespace": "__meta_kubernetes_namespace",
                     "pod": "__meta_kubernetes_pod_name"}
    # The worker's own labels select one service and pool; a target label of the same name
    # would push them aside (exported_service), so no relabelling may write them. The
    # namespace target label is the pod's namespace, which is what the worker's own says
    # (the downward API); honor_labels keeps the worker's own where it sets one.
    assert not set(plain) & {SERVICE_LABEL, POOL_LABEL}
    assert plain[NAMESPACE_LABEL] == "__meta_kubernetes_namespace"
    assert job["honor_labels"] is True and endpoint["honorLabels"] is True


def test_both_scrape_the_port_the_rendered_workers_serve_metrics_on() -> None:
    """One name, the operator's (the container port of the worker's probe listener): the
    chart's PodMonitor value, the generated PodMonitor and the plain scrape job select it."""
    port = cf.worker_metrics_port()
    values = cf.load_values(cf.CHART / "values.yaml")
    assert values["metrics"]["workerPodMonitor"]["port"] == port
    monitor = yaml.safe_load((PROM / "podmonitor-workers.yaml").read_text("utf-8"))
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == [port]
    keep = [r for r in _job("elastic-tts-workers")["relabel_configs"]
            if r.get("source_labels") == ["__meta_kubernetes_pod_container_port_name"]]
    assert [(r["regex"], r["action"]) for r in keep] == [(port, "keep")]


def test_the_operator_job_keeps_the_operators_labels_and_finds_its_pods() -> None:
    job = _job("elastic-tts-operator")
    assert job["honor_labels"] is True
    (deployment,) = cf.of_kind(cf.objects(), "Deployment")
    pod = deployment["spec"]["template"]
    keep = job["relabel_configs"][0]
    # Kubernetes SD names a pod label __meta_kubernetes_pod_label_<name>, with every
    # character a Prometheus label name may not hold turned into `_`.
    sanitised = {re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in pod["metadata"]["labels"].items()}
    labels = [s.removeprefix("__meta_kubernetes_pod_label_") for s in keep["source_labels"]]
    assert [sanitised[label] for label in labels] == keep["regex"].split(";")
    ports = [p["name"] for p in pod["spec"]["containers"][0]["ports"]]
    assert job["relabel_configs"][1]["regex"] in ports


def test_dashboard_configmap_carries_the_dashboard() -> None:
    docs = cf.objects({"dashboard": {"enabled": True}})
    (configmap,) = cf.of_kind(docs, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    text = (cf.CHART / "files" / "dashboard.json").read_text("utf-8").rstrip("\n")
    assert configmap["data"]["elastic-tts.json"] == text
