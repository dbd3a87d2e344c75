"""Prometheus metrics for one worker process, in multiprocess mode under gunicorn.

When PROMETHEUS_MULTIPROC_DIR is set (gunicorn_conf sets it and wipes it at start), every
process writes its samples to files there and each scrape builds a fresh registry with a
MultiProcessCollector, so the answer adds up all live workers whichever one is asked.
Without it (the Flask test client, a single process) the app's own registry is exposed.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from tts_worker import metric_names as names


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class WorkerMetrics:
    """The contract's series, bound to this process's `service` and `pool` labels.

    Also the engines' observer: `queue_changed`, `oom` and `batch` are called from engine
    threads.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, service: str, pool: str) -> None:
        self._registry = CollectorRegistry(auto_describe=True)
        common = names.COMMON_LABELS
        reg = self._registry
        self._requests = Counter(names.REQUESTS_TOTAL, "POST /tts requests by status",
                                 (*common, names.STATUS_LABEL), registry=reg)
        self._characters = Counter(names.CHARACTERS_TOTAL,
                                   "Characters of valid POST /tts requests (offered load)",
                                   common, registry=reg)
        self._duration = Histogram(names.REQUEST_DURATION_SECONDS,
                                   "Seconds from arrival to audio, successful requests",
                                   common, buckets=names.DURATION_BUCKETS, registry=reg)
        self._inflight = Gauge(names.INFLIGHT_REQUESTS, "Admitted requests not yet answered",
                               common, multiprocess_mode="livesum", registry=reg)
        self._queue = Gauge(names.QUEUE_DEPTH, "Text chunks waiting for the engine",
                            common, multiprocess_mode="livesum", registry=reg)
        self._engine = Gauge(names.ENGINE_INFO, "The engine serving, and its device",
                             (*common, names.ENGINE_LABEL, names.DEVICE_LABEL),
                             multiprocess_mode="livemax", registry=reg)
        self._cache_hits = Counter(names.CACHE_HITS_TOTAL, "Audio cache hits", common,
                                   registry=reg)
        self._cache_misses = Counter(names.CACHE_MISSES_TOTAL, "Audio cache misses", common,
                                     registry=reg)
        self._oom = Counter(names.OOM_TOTAL, "CUDA out-of-memory errors caught", common,
                            registry=reg)
        self._batch = Histogram(names.BATCH_SIZE, "Text chunks per engine call", common,
                                buckets=names.BATCH_BUCKETS, registry=reg)
        labels = {names.SERVICE_LABEL: service, names.POOL_LABEL: pool}
        self._common = labels
        # Bind the children now so that every series exists, at zero, from the first scrape:
        # rate() over a series that appears late under-reads the first window.
        self.characters = self._characters.labels(**labels)
        self.duration = self._duration.labels(**labels)
        self.inflight = self._inflight.labels(**labels)
        self.queue = self._queue.labels(**labels)
        self.cache_hits = self._cache_hits.labels(**labels)
        self.cache_misses = self._cache_misses.labels(**labels)
        self.oom_total = self._oom.labels(**labels)
        self.batch_size = self._batch.labels(**labels)
        self._requests.labels(**labels, status="200")

    def request_done(self, status: int, seconds: float) -> None:
        self._requests.labels(**self._common, status=str(status)).inc()
        if status == 200:
            self.duration.observe(seconds)

    def engine_ready(self, engine: str, device: str) -> None:
        self._engine.labels(**self._common, engine=engine, device=device).set(1)

    # The engine observer.
    def queue_changed(self, delta: int) -> None:
        self.queue.inc(delta)

    def oom(self) -> None:
        self.oom_total.inc()

    def batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def render(self) -> bytes:
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self._registry)
        # A fresh registry per scrape: the collector reads every process's files each time.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
