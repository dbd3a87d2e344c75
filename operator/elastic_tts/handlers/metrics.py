"""The operator's own Prometheus metrics (served on --metrics-port, /metrics).

Series are labelled by namespace and service; per-pool gauges add pool. The gauges of a
deleted TTSService are removed with it, so dashboards do not show ghosts.

The chart's dashboard and alerts (charts/elastic-tts/templates/prometheusrule.yaml) read
these names; tests/monitoring scrapes this endpoint and checks every name they use.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from elastic_tts import __version__
from elastic_tts.policy import Decision
from elastic_tts.policy.model import Mode
from elastic_tts.reconcile.reasons import CONDITION_TYPES

MODES: tuple[str, ...] = get_args(Mode)

BUILD_INFO = Gauge(
    "elastic_tts_build_info", "Always 1: the operator's version (absent means it is down)",
    ["version"])
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
MODE = Gauge(
    "elastic_tts_mode", "1 for the mode of the last decision, 0 for every other mode",
    ["namespace", "service", "mode"])
DEMAND = Gauge(
    "elastic_tts_demand",
    "Capacity the last decision sized for (load / targetUtilization), in the spec's metric "
    "unit per second (characters or requests); absent while metrics are unavailable",
    ["namespace", "service"])
CAPACITY = Gauge(
    "elastic_tts_capacity",
    "Capacity of the desired replicas within the SLO, in the same unit as elastic_tts_demand",
    ["namespace", "service"])
SPOT_FALLBACK = Gauge(
    "elastic_tts_spot_fallback",
    "1 while this spot pool is backed off and its fallbackTo pool covers it, else 0",
    ["namespace", "service", "pool"])
CONDITION = Gauge(
    "elastic_tts_condition", "Status conditions of each TTSService: 1 True, 0 False",
    ["namespace", "service", "condition"])
EVENTS = Counter(
    "elastic_tts_events_total", "Kubernetes Events the operator posted, by reason and type",
    ["namespace", "service", "reason", "type"])
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
    BUILD_INFO.labels(__version__).set(1)
    start_http_server(port, addr=address)


def record_decision(namespace: str, service: str, decision: Decision) -> None:
    DECISIONS.labels(namespace, service, decision.mode).inc()
    COST_PER_HOUR.labels(namespace, service).set(decision.cost_per_hour)
    for mode in MODES:
        MODE.labels(namespace, service, mode).set(1 if mode == decision.mode else 0)
    if decision.demand is None:
        with contextlib.suppress(KeyError):
            DEMAND.remove(namespace, service)
    else:
        DEMAND.labels(namespace, service).set(decision.demand)
    CAPACITY.labels(namespace, service).set(decision.capacity)
    for pool, replicas in decision.replicas.items():
        DESIRED_REPLICAS.labels(namespace, service, pool).set(replicas)
        SPOT_FALLBACK.labels(namespace, service, pool).set(
            1 if pool in decision.spot_backoff else 0)


def record_conditions(namespace: str, service: str,
                      conditions: Iterable[Mapping[str, Any]] | None) -> None:
    for condition in conditions or []:
        if condition.get("type") in CONDITION_TYPES:
            CONDITION.labels(namespace, service, condition["type"]).set(
                1 if condition.get("status") == "True" else 0)


def record_event(namespace: str, service: str, reason: str, type_: str) -> None:
    EVENTS.labels(namespace, service, reason, type_).inc()


def forget_service(namespace: str, service: str, pools: Iterable[str]) -> None:
    removals: list[tuple[Gauge, tuple[str, ...]]] = [
        (COST_PER_HOUR, ()), (DEMAND, ()), (CAPACITY, ())]
    for pool in pools:
        removals += [(DESIRED_REPLICAS, (pool,)), (SPOT_FALLBACK, (pool,))]
    removals += [(MODE, (mode,)) for mode in MODES]
    removals += [(CONDITION, (kind,)) for kind in CONDITION_TYPES]
    for gauge, extra in removals:
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, service, *extra)
