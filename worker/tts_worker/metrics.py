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
    """The contract's series, bound to this process's `namespace`, `service` and `pool`.

    Also the engines' observer: `queue_changed`, `oom` and `batch` are called from engine
    threads.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, namespace: str, service: str, pool: str) -> None:
        self._registry = CollectorRegistry(auto_describe=True)
        common = names.COMMON_LABELS
        reg = self._registry
        self._requests = Counter(names.REQUESTS_TOTAL, "Synthesis requests by status, retries "
                                 "included", (*common, names.STATUS_LABEL), registry=reg)
        self._characters = Counter(names.CHARACTERS_TOTAL, "Characters of valid synthesis "
                                   "requests that are not retries (offered load)", common,
                                   registry=reg)
        self._offered = Counter(names.OFFERED_REQUESTS_TOTAL, "Valid synthesis requests that "
                                "are not retries (offered load)", common, registry=reg)
        self._refusals = Counter(names.REFUSALS_TOTAL, "Refused synthesis requests by reason",
                                 (*common, names.REASON_LABEL), registry=reg)
        self._refused_chars = Counter(names.REFUSED_CHARACTERS_TOTAL,
                                      "Characters of refused synthesis requests", common,
                                      registry=reg)
        self._within_slo = Counter(names.REQUESTS_WITHIN_SLO_TOTAL, "Successful synthesis "
                                   "requests answered to the last byte within their SLO",
                                   common, registry=reg)
        self._duration = Histogram(names.REQUEST_DURATION_SECONDS,
                                   "Seconds from arrival to audio, successful requests",
                                   common, buckets=names.DURATION_BUCKETS, registry=reg)
        self._first_audio = Histogram(names.TIME_TO_FIRST_AUDIO_SECONDS,
                                      "Seconds from arrival to the first audio byte sent, "
                                      "successful requests", common,
                                      buckets=names.DURATION_BUCKETS, registry=reg)
        self._inflight = Gauge(names.INFLIGHT_REQUESTS, "Admitted requests not yet answered",
                               common, multiprocess_mode="livesum", registry=reg)
        self._queue = Gauge(names.QUEUE_DEPTH, "Admitted requests waiting for a slot",
                            common, multiprocess_mode="livesum", registry=reg)
        self._backlog = Gauge(names.BACKLOG_CHARACTERS, "Admitted characters not yet "
                              "synthesised", common, multiprocess_mode="livesum", registry=reg)
        self._wait = Gauge(names.EXPECTED_WAIT_SECONDS, "Expected wait of a request arriving "
                           "now", common, multiprocess_mode="livemax", registry=reg)
        self._throughput = Gauge(names.THROUGHPUT_ESTIMATE, "Characters per second admission "
                                 "expects this pod to serve", common,
                                 multiprocess_mode="livesum", registry=reg)
        self._engine = Gauge(names.ENGINE_INFO, "The engine serving, and its device",
                             (*common, names.ENGINE_LABEL, names.DEVICE_LABEL),
                             multiprocess_mode="livemax", registry=reg)
        self._cache_hits = Counter(names.CACHE_HITS_TOTAL, "Audio cache hits", common,
                                   registry=reg)
        self._cache_misses = Counter(names.CACHE_MISSES_TOTAL, "Audio cache misses", common,
                                     registry=reg)
        self._engine_queue = Gauge(names.ENGINE_QUEUE_CHUNKS, "Text chunks waiting for the "
                                   "engine's pipeline", common, multiprocess_mode="livesum",
                                   registry=reg)
        self._oom = Counter(names.OOM_TOTAL, "CUDA out-of-memory errors caught", common,
                            registry=reg)
        self._batch = Histogram(names.BATCH_SIZE, "Text chunks per engine call", common,
                                buckets=names.BATCH_BUCKETS, registry=reg)
        self._recycles = Counter(names.RECYCLES_TOTAL, "Worker processes replaced, by reason",
                                 (*common, names.REASON_LABEL), registry=reg)
        labels = {names.NAMESPACE_LABEL: namespace, names.SERVICE_LABEL: service,
                  names.POOL_LABEL: pool}
        self._common = labels
        # Bind the children now so that every series exists, at zero, from the first scrape:
        # rate() over a series that appears late under-reads the first window.
        self.characters = self._characters.labels(**labels)
        self.offered_requests = self._offered.labels(**labels)
        self.refused_characters = self._refused_chars.labels(**labels)
        self.within_slo = self._within_slo.labels(**labels)
        self.duration = self._duration.labels(**labels)
        self.first_audio = self._first_audio.labels(**labels)
        self.inflight = self._inflight.labels(**labels)
        self.queue_depth = self._queue.labels(**labels)
        self.backlog = self._backlog.labels(**labels)
        self.expected_wait = self._wait.labels(**labels)
        self.throughput = self._throughput.labels(**labels)
        self.cache_hits = self._cache_hits.labels(**labels)
        self.cache_misses = self._cache_misses.labels(**labels)
        self.engine_queue = self._engine_queue.labels(**labels)
        self.oom_total = self._oom.labels(**labels)
        self.batch_size = self._batch.labels(**labels)
        self._requests.labels(**labels, status="200")
        for reason in names.REFUSAL_REASONS:
            self._refusals.labels(**labels, reason=reason)

    def offered(self, characters: int) -> None:
        self.characters.inc(characters)
        self.offered_requests.inc()

    def refused(self, reason: str, characters: int) -> None:
        self._refusals.labels(**self._common, reason=reason).inc()
        self.refused_characters.inc(characters)

    def request_done(self, status: int, seconds: float) -> None:
        self._requests.labels(**self._common, status=str(status)).inc()
        if status == 200:
            self.duration.observe(seconds)

    def answered(self, seconds: float, slo: float) -> None:
        """A 200 answer whose last byte left `seconds` after arrival; `slo` is its own."""
        if seconds <= slo:
            self.within_slo.inc()

    def engine_ready(self, engine: str, device: str) -> None:
        self._engine.labels(**self._common, engine=engine, device=device).set(1)

    def recycled(self, reason: str) -> None:
        self._recycles.labels(**self._common, reason=reason).inc()

    # The admission observer.
    def admission_changed(self, queued: int, backlog_chars: float, expected_wait: float,
                          throughput: float) -> None:
        self.queue_depth.set(queued)
        self.backlog.set(backlog_chars)
        self.expected_wait.set(expected_wait)
        self.throughput.set(throughput)

    # The engine observer.
    def queue_changed(self, delta: int) -> None:
        self.engine_queue.inc(delta)

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
