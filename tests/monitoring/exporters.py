"""The real exporters the dashboard and the alerts read, started as users run them.

- the operator: `elastic-tts run` as a process, against the KMock API server of the
  operator tier with its fake kubelet, serving its own /metrics;
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
from tests.e2e.loop import OperatorProcess
from tests.operator.cluster import FakeKubelet, wait_for
from tests.operator.conftest import write_kubeconfig
from tests.operator.emulator import EmulatorThread
from tests.operator.prom import Prometheus, free_port
from tests.operator.specs import CPU, GPU, SPOT, tts
from tests.worker.servers import Server

NAMESPACE = "monitoring-check"
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


def _worker_metrics_url(worker: Server, probe_port: int) -> str:
    """/metrics on the worker's probe listener (TTS_PROBE_BIND) where it has one, else on
    its API port, as before the listener existed."""
    for url in (f"http://127.0.0.1:{probe_port}/metrics", f"{worker.url}/metrics"):
        try:
            if requests.get(url, timeout=2).ok:
                return url
        except requests.ConnectionError:
            continue
    raise AssertionError(f"the worker serves no /metrics:\n{worker.log()}")


def _metrics(url: str) -> str:
    return requests.get(url, timeout=5).text


def start(folder: Path, rules: Path) -> tuple[Exporters, list[Any]]:
    """Everything started; returns the scrapes and what to stop, in order. On a failure
    what was started is stopped before the error goes on."""
    stoppers: list[Any] = []
    try:
        return _start(folder, rules, stoppers), stoppers
    except BaseException:
        for stop in stoppers:
            stop()
        raise


def _start(folder: Path, rules: Path, stoppers: list[Any]) -> Exporters:
    emulator = EmulatorThread().start()
    stoppers.append(emulator.stop)
    kubeconfig = write_kubeconfig(folder / "kubeconfig", emulator.url, "operator-token")
    cluster = PykubeCluster(pykube.HTTPClient(pykube.KubeConfig.from_file(str(kubeconfig)),
                                              timeout=10.0))
    kubelet = FakeKubelet(cluster, NAMESPACE).start()
    stoppers.insert(0, kubelet.stop)

    port, probe_port = free_port(), free_port()
    script = Path(sys.executable).with_name("elastic-tts-worker")
    worker = Server([str(script), "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--engine", "espeak", "--workers", "1"],
                    {"PROMETHEUS_MULTIPROC_DIR": str(folder / "prom-multiproc"),
                     "TTS_SERVICE": SERVICE, "TTS_POOL": "cpu", "TTS_NAMESPACE": NAMESPACE,
                     # One slot and a one-request queue: a burst of four gets refusals.
                     "TTS_MAX_CONCURRENCY": "1", "TTS_MAX_QUEUE": "1",
                     "TTS_LATENCY_SLO_SECONDS": "3", "TTS_CACHE_ENTRIES": "0",
                     "TTS_PROBE_BIND": f"127.0.0.1:{probe_port}"},
                    port, folder / "worker.log")
    stoppers.insert(0, worker.stop)
    worker.wait_ready()
    metrics_url = _worker_metrics_url(worker, probe_port)

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

    # Created before the operator starts: the emulator lists a namespace only once it
    # holds objects, and kopf watches only namespaces it has seen listed.
    cluster.create(TTSSERVICES, NAMESPACE, tts(
        SERVICE, prometheus.url, pools={"gpu": GPU, "spot": SPOT, "cpu": CPU}))
    cluster.create(TTSSERVICES, NAMESPACE, tts(
        "broken", prometheus.url, pools={"gpu": {**GPU, "maxReplicas": -1}}))
    cluster.create(TTSSERVICES, NAMESPACE, tts(
        "blind", f"http://127.0.0.1:{free_port()}", pools={"cpu": CPU}))

    operator = OperatorProcess(NAMESPACE, kubeconfig, folder / "operator.log")
    operator.start()
    stoppers.insert(0, operator.stop)
    operator.wait_alive()
    target = operator.metrics_url.removeprefix("http://").removesuffix("/metrics")
    operator_sd.write_text(json.dumps([{"targets": [target]}]))

    wanted = [f'elastic_tts_demand{{namespace="{NAMESPACE}",service="{SERVICE}"}}',
              "elastic_tts_events_total{", 'kind="InvalidSpec"',
              f'elastic_tts_condition{{condition="MetricsAvailable",namespace="{NAMESPACE}",'
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
