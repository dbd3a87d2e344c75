"""A real Prometheus (the Debian binary) scraping an in-process exporter every second.

The exporter speaks the worker's metric contract (tts_characters_total,
tts_offered_requests_total and tts_requests_total{status}, and the admission series of
ADMISSION.md: tts_refusals_total{reason}, tts_queue_depth, tts_backlog_characters;
labelled namespace, service and pool); a feeder thread advances the counters at the rates
a test sets, so Prometheus computes real rates from real scrapes.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path

import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from elastic_tts_dev.processes import Child, free_port


class Exporter:
    """Counters the test drives: `set_load(service, pool, chars_per_second)`, for the
    TTSServices of `namespace` (the operator selects on it) unless another is named. An
    exporter shared by tests that each have a namespace of their own has no default, and
    every `set_load` names one. `set_load` binds the admission series at zero, as a
    worker does at start-up (unless ``admission=False``: a worker older than the
    admission contract); `set_admission` sets refusals per second and the gauges."""

    TICK = 0.1
    CHARACTERS_PER_REQUEST = 100

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace
        self.registry = CollectorRegistry()
        self.characters = Counter("tts_characters", "characters offered",
                                  ["namespace", "service", "pool"], registry=self.registry)
        self.offered = Counter("tts_offered_requests", "requests offered",
                               ["namespace", "service", "pool"], registry=self.registry)
        self.requests = Counter("tts_requests", "requests answered",
                                ["namespace", "service", "pool", "status"],
                                registry=self.registry)
        self.refusals = Counter("tts_refusals", "requests refused",
                                ["namespace", "service", "pool", "reason"],
                                registry=self.registry)
        self.queue_depth = Gauge("tts_queue_depth", "requests waiting for a slot",
                                 ["namespace", "service", "pool"], registry=self.registry)
        self.backlog = Gauge("tts_backlog_characters", "characters not yet synthesised",
                             ["namespace", "service", "pool"], registry=self.registry)
        self._refusing: dict[tuple[str, str, str], float] = {}
        self.port = free_port()
        self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self._rates: dict[tuple[str, str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, name="exporter-feed", daemon=True)
        self._thread.start()

    def _key(self, service: str, pool: str, namespace: str | None) -> tuple[str, str, str]:
        namespace = namespace or self.namespace
        if not namespace:
            raise ValueError(f"{service!r}, {pool!r}: name the namespace (this exporter "
                             "has no default)")
        return namespace, service, pool

    def set_load(self, service: str, pool: str, chars_per_second: float,
                 namespace: str | None = None, requests_per_second: float | None = None,
                 admission: bool = True) -> None:
        """From now on the pool serves these rates (requests default to one per
        CHARACTERS_PER_REQUEST characters); `admission` also exports the workers'
        admission series (no refusals, an empty queue) unless set_admission set them."""
        key = self._key(service, pool, namespace)
        if requests_per_second is None:
            requests_per_second = chars_per_second / self.CHARACTERS_PER_REQUEST
        with self._lock:
            self._rates[key] = (chars_per_second, requests_per_second)
        if admission and key not in self._refusing:
            self.set_admission(service, pool, namespace=namespace)
        self._advance(key, 0, 0, 0)

    def set_admission(self, service: str, pool: str, *, refusals_per_second: float = 0.0,
                      backlog_characters: float = 0.0, queue_depth: float = 0.0,
                      namespace: str | None = None) -> None:
        key = self._key(service, pool, namespace)
        with self._lock:
            self._refusing[key] = refusals_per_second
        self.backlog.labels(*key).set(backlog_characters)
        self.queue_depth.labels(*key).set(queue_depth)
        self._advance(key, 0, 0, 0)

    def _advance(self, key: tuple[str, str, str], characters: float, count: float,
                 refused: float) -> None:
        self.characters.labels(*key).inc(characters)
        self.offered.labels(*key).inc(count)
        self.requests.labels(*key, "200").inc(count)
        if key in self._refusing:
            self.refusals.labels(*key, "slo").inc(refused)
            self.requests.labels(*key, "429").inc(refused)

    def _feed(self) -> None:
        while not self._stop.wait(self.TICK):
            with self._lock:
                rates = dict(self._rates)
                refusing = dict(self._refusing)
            for key in rates.keys() | refusing.keys():
                characters, answered = rates.get(key, (0.0, 0.0))
                self._advance(key, characters * self.TICK, answered * self.TICK,
                              refusing.get(key, 0.0) * self.TICK)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._server.shutdown()
        self._server.server_close()


class Prometheus:
    """`prometheus` on a free loopback port with a 1 s scrape of the exporter, run as a
    `Child` (it dies with its parent, even a SIGKILLed one); its log is prometheus.log in
    its folder."""

    def __init__(self, target_port: int | None = None, scrape_configs: str | None = None,
                 rule_files: tuple[Path, ...] = ()) -> None:
        """Scrapes 127.0.0.1:`target_port`, or whatever `scrape_configs` (the YAML list
        under ``scrape_configs:``, indented by two) says, such as file-based discovery;
        evaluates `rule_files` every second."""
        binary = shutil.which("prometheus")
        if binary is None:  # `make test` installs it (system-deps); say so if it is gone
            raise RuntimeError("the Debian `prometheus` binary is not installed")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="elastic-tts-prom-"))
        config = self._dir / "prometheus.yml"
        if scrape_configs is None:
            scrape_configs = ("  - job_name: tts\n"
                              f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n")
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: {[str(path) for path in rule_files]!r}\n"
            "scrape_configs:\n" + scrape_configs
        )
        self.directory = self._dir
        self._args = [binary, f"--config.file={config}",
                      f"--storage.tsdb.path={self._dir / 'data'}",
                      f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
        self.child: Child | None = None
        self.start()

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    def start(self) -> None:
        self.child = Child("prometheus", self._args, self._dir / "prometheus.log")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.child.alive():
                break
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        tail = self.child.tail(10)
        self.stop()
        raise RuntimeError(f"prometheus did not become ready within 30 s; its log:\n{tail}")

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 10 s): Prometheus shuts down cleanly."""
        if self.child is not None:
            self.child.stop(grace=10)
            self.child = None

    def kill(self) -> None:
        """SIGKILL, as an OOM kill or a lost node would."""
        if self.child is not None:
            self.child.kill()
            self.child = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
