"""The operator's own Prometheus metrics (served on --metrics-port, /metrics).

Series are labelled by namespace and service; per-pool gauges add pool. The gauges of a
deleted TTSService are removed with it, so dashboards do not show ghosts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

DECISIONS = Counter(
    "elastic_tts_decisions_total", "Decisions taken by the engine, by resulting mode",
    ["namespace", "service", "mode"])
SCALE_CHANGES = Counter(
    "elastic_tts_scale_changes_total", "Replica changes applied by the executor",
    ["namespace", "service", "pool", "direction"])
DESIRED_REPLICAS = Gauge(
    "elastic_tts_desired_replicas", "Replicas the last decision wants per pool",
    ["namespace", "service", "pool"])
COST_PER_HOUR = Gauge(
    "elastic_tts_estimated_cost_per_hour", "Estimated cost per hour of the last decision",
    ["namespace", "service"])
RECONCILE_SECONDS = Histogram(
    "elastic_tts_reconcile_duration_seconds", "Time spent in one reconcile step",
    ["step"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
ERRORS = Counter(
    "elastic_tts_reconcile_errors_total", "Reconcile steps that failed, by error kind",
    ["namespace", "service", "kind"])
PROMETHEUS_FAILURES = Counter(
    "elastic_tts_prometheus_query_failures_total",
    "Ticks whose Prometheus queries failed or timed out", ["namespace", "service"])


def serve(port: int, address: str = "0.0.0.0") -> None:
    start_http_server(port, addr=address)


def forget_service(namespace: str, service: str, pools: Iterable[str]) -> None:
    for pool in pools:
        with contextlib.suppress(KeyError):
            DESIRED_REPLICAS.remove(namespace, service, pool)
    with contextlib.suppress(KeyError):
        COST_PER_HOUR.remove(namespace, service)
