"""The real exporters the dashboard and the alerts read, started as users run them.

- the operator: `elastic-tts run` as a process under the chart's ServiceAccount token,
  against the local cluster of the real-cluster tier (`local_cluster`, `installed`: a
  real API server, with kwok playing the kubelet), serving its own /metrics;
- a worker: `elastic-tts-worker serve` (gunicorn, espeak-ng), given real requests;
- the Debian Prometheus, scraping both every second with the jobs of
  manifests/prometheus/scrape-config.yaml (honor_labels, static targets instead of
  Kubernetes discovery), evaluating the chart's rules. The TTSService reads its load from
  this Prometheus, so the loop is the real one: worker -> Prometheus -> operator.

Three TTSServices give the operator's labelled series samples: `svc` (served by the
worker, scaled), `broken` (an invalid spec: InvalidSpec, an error of that kind and an
event) and `blind` (a Prometheus that does not answer: MetricsAvailable False).
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykube
import requests
from prometheus_client.parser import text_string_to_metric_families

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import TTSSERVICES
from elastic_tts_dev.operator import OperatorProcess
from elastic_tts_dev.processes import free_port
from elastic_tts_dev.prometheus import Prometheus
from elastic_tts_dev.servers import Server
from elastic_tts_dev.specs import CPU, GPU, SPOT, tts
from tests.cluster.fixtures import Installation
from tests.operator.cluster import wait_for

SERVICE = "svc"
TEXT = "今天天气很好，我们一起去公园散步吧。" * 3


@dataclass
class Exposition:
    """One scrape of an exporter, read with prometheus_client's own parser."""

    text: str

    def samples(self) -> dict[str, list[dict[str, str]]]:
        """Sample name (with _total, _bucket, ... as PromQL sees it) -> label sets."""
        out: dict[str, list[dict[str, str]]] = {}
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                out.setdefault(sample.name, []).append(dict(sample.labels))
        return out

    def families(self) -> set[str]:
        """Names announced by # TYPE lines, samples or not."""
        return {line.split()[2] for line in self.text.splitlines()
                if line.startswith("# TYPE ")}


@dataclass
class Exporters:
    operator: Exposition
    worker: Exposition
    prometheus: Prometheus
    operator_log: str
    worker_log: str

    def samples(self) -> dict[str, list[dict[str, str]]]:
        both = self.operator.samples()
        for name, labels in self.worker.samples().items():
            both.setdefault(name, []).extend(labels)
        return both


def _post_concurrently(worker: Server, count: int) -> list[int]:
    statuses: list[int] = []
    lock = threading.Lock()

    def one() -> None:
        reply = worker.post("/tts", {"text": TEXT})
        with lock:
            statuses.append(reply.status)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def _metrics(url: str) -> str:
    return requests.get(url, timeout=5).text


def start(installed: Installation, folder: Path, rules: Path
          ) -> tuple[Exporters, list[Any]]:
    """Everything started; returns the scrapes and what to stop, in order. On a failure
    what was started is stopped before the error goes on."""
    stoppers: list[Any] = []
    try:
        return _start(installed, folder, rules, stoppers), stoppers
    except BaseException:
        for stop in stoppers:
            stop()
        raise


def _start(installed: Installation, folder: Path, rules: Path,
           stoppers: list[Any]) -> Exporters:
    local = installed.cluster
    namespace = local.create_namespace(f"monitoring-{secrets.token_hex(3)}")
    stoppers.append(lambda: local.delete_namespace(namespace))
    # The tests' own client (admin); the operator runs under the chart's ServiceAccount.
    admin = PykubeCluster(pykube.HTTPClient(pykube.KubeConfig.from_file(str(local.kubeconfig)),
                                            timeout=10.0))

    port, probe_port = free_port(), free_port()
    script = Path(sys.executable).with_name("elastic-tts-worker")
    worker = Server([str(script), "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--engine", "espeak", "--workers", "1"],
                    {"PROMETHEUS_MULTIPROC_DIR": str(folder / "prom-multiproc"),
                     "TTS_SERVICE": SERVICE, "TTS_POOL": "cpu", "TTS_NAMESPACE": namespace,
                     # One slot and a one-request queue: a burst of four gets refusals.
                     "TTS_MAX_CONCURRENCY": "1", "TTS_MAX_QUEUE": "1",
                     "TTS_LATENCY_SLO_SECONDS": "3", "TTS_CACHE_ENTRIES": "0",
                     "TTS_PROBE_BIND": f"127.0.0.1:{probe_port}"},
                    port, folder / "worker.log", probe_port)
    stoppers.insert(0, worker.stop)
    worker.wait_ready()
    metrics_url = f"{worker.probe_url}/metrics"  # the probe listener serves /metrics

    # The operator's port is known once it runs: Prometheus finds it through a file.
    operator_sd = folder / "operator-sd.json"
    operator_sd.write_text("[]")
    prometheus = Prometheus(scrape_configs=(
        "  - job_name: elastic-tts-workers\n"
        "    honor_labels: true\n"
        f"    static_configs: [{{targets: ['{metrics_url.split('/')[2]}']}}]\n"
        "  - job_name: elastic-tts-operator\n"
        "    honor_labels: true\n"
        f"    file_sd_configs: [{{files: ['{operator_sd}'], refresh_interval: 1s}}]\n"),
        rule_files=(rules,))
    stoppers.insert(0, prometheus.close)

    for _ in range(3):
        assert worker.post("/tts", {"text": TEXT}).status == 200
    statuses = _post_concurrently(worker, 4)
    assert 200 in statuses, statuses

    admin.create(TTSSERVICES, namespace, tts(
        SERVICE, prometheus.url, pools={"gpu": GPU, "spot": SPOT, "cpu": CPU}))
    # The API server takes it; only the operator can tell that the time zone is unknown.
    admin.create(TTSSERVICES, namespace, tts(
        "broken", prometheus.url, schedule={"timezone": "Mars/Olympus"}))
    admin.create(TTSSERVICES, namespace, tts(
        "blind", f"http://127.0.0.1:{free_port()}", pools={"cpu": CPU}))

    operator = OperatorProcess(installed.kubeconfig, folder / "operator.log",
                               namespaces=[namespace], extra_args=["--rate-windows=4s,8s"])
    stoppers.insert(0, operator.stop)
    operator.start()
    target = operator.metrics_url.removeprefix("http://").removesuffix("/metrics")
    operator_sd.write_text(json.dumps([{"targets": [target]}]))

    wanted = [f'elastic_tts_demand{{namespace="{namespace}",service="{SERVICE}"}}',
              "elastic_tts_events_total{", 'kind="InvalidSpec"',
              f'elastic_tts_condition{{condition="MetricsAvailable",namespace="{namespace}",'
              'service="blind"} 0.0', "elastic_tts_scale_changes_total{"]
    missing: list[str] = []

    def operator_has_every_kind_of_sample() -> bool:
        text = _metrics(operator.metrics_url)
        missing[:] = [w for w in wanted if w not in text]
        return not missing

    try:
        wait_for("the operator's series for all three services",
                 operator_has_every_kind_of_sample, timeout=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nmissing: {missing}\n{operator.log()}") from None

    def scraped_and_evaluated() -> bool:
        up = requests.get(f"{prometheus.url}/api/v1/query", params={"query": "up == 1"},
                          timeout=5).json()["data"]["result"]
        groups = requests.get(f"{prometheus.url}/api/v1/rules", timeout=5).json()["data"][
            "groups"]
        evaluated = groups and all(r.get("lastEvaluation", "").startswith("2") and
                                   not r["lastEvaluation"].startswith("0001")
                                   for g in groups for r in g["rules"])
        return len(up) == 2 and bool(evaluated)

    wait_for("Prometheus scraping both and evaluating the rules", scraped_and_evaluated,
             timeout=60)
    time.sleep(2)  # a couple more scrapes, so rates over [1m] have two samples
    return Exporters(Exposition(_metrics(operator.metrics_url)),
                     Exposition(_metrics(metrics_url)), prometheus,
                     operator.log(), worker.log())
