"""`LoadSource` over prometheus-api-client: every PromQL query the operator runs.

The workers' counters (worker/tts_worker/metric_names.py: offered load, each request
counted once) carry ``namespace``, ``service`` and ``pool``; the built-in query rates
each signal by pool over each window, every signal and window in one round trip, each
series tagged with ``signal`` and ``window`` labels. A spec's
``scaling.prometheus.query`` replaces the built-in query for the signal the engine scales
on; it may use $service, $namespace, $window and $metric.

One PrometheusConnect per URL, reused by every service's tick, with a connection pool
as large as the ticks that run at once (requests' default of 10 would close and reopen
connections under 16 tick threads). Retries are off here: the control loop itself
retries on the next tick, and a slow Prometheus must not stretch a tick past its
interval.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from elastic_tts.reconcile.ports import LoadQuery, MetricsUnavailable, PoolLoad, WindowLoad

SELECTOR = 'namespace="$namespace",service="$service"'
RATE = f"sum by (pool) (rate($metric{{{SELECTOR}}}[$window]))"
MEAN = f"sum by (pool) (avg_over_time($metric{{{SELECTOR}}}[$window]))"
# Each PoolLoad field: the worker's series (names pinned on both sides) and how it is
# read over a window: a counter's rate, or a gauge's mean, summed over the pool.
SIGNALS = {
    "characters": ("tts_characters_total", RATE),
    "requests": ("tts_offered_requests_total", RATE),
    "refusals": ("tts_refusals_total", RATE),
    "queue_depth": ("tts_queue_depth", MEAN),
    "backlog_characters": ("tts_backlog_characters", MEAN),
}

Series = list[tuple[Mapping[str, str], float]]
POOL_SIZE = 32  # connections kept to each Prometheus: ticks and their reads at once


def render_query(template: str, service: str, namespace: str, window: str,
                 metric: str) -> str:
    """Fill the placeholders; label values are quoted for PromQL."""
    return (template.replace("$service", _escape(service))
            .replace("$namespace", _escape(namespace))
            .replace("$window", window).replace("$metric", metric))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def builtin_query(query: LoadQuery, windows: tuple[str, ...]) -> str:
    """Every signal by pool over each of ``windows``, in one query."""
    parts = [
        'label_replace(label_replace('
        f'{render_query(template, query.service, query.namespace, window, name)}, '
        f'"signal", "{signal}", "", ""), "window", "{window}", "", "")'
        for window in windows for signal, (name, template) in SIGNALS.items()
    ]
    return " or ".join(parts)


class PrometheusLoadSource:
    def __init__(self) -> None:
        self._clients: dict[str, PrometheusConnect] = {}
        self._lock = threading.Lock()

    def load(self, query: LoadQuery) -> dict[str, WindowLoad]:
        source = query.source
        by_window: dict[str, dict[str, dict[str, float]]] = {
            window: {signal: {} for signal in SIGNALS} for window in query.windows}
        for labels, value in self.instant(source.url, builtin_query(query, query.windows),
                                          source.timeout_seconds):
            pools = by_window.get(labels.get("window", ""), {}).get(labels.get("signal", ""))
            if pools is not None:
                _add(pools, labels, value)
        loads = {}
        for window, signals in by_window.items():
            if source.query:
                override = self.instant(source.url, render_query(
                    source.query, query.service, query.namespace, window,
                    SIGNALS[query.metric][0]), source.timeout_seconds)
                signals[query.metric] = {}
                for labels, value in override:
                    _add(signals[query.metric], labels, value)
            names = set().union(*signals.values())
            loads[window] = WindowLoad({pool: PoolLoad(
                characters=signals["characters"].get(pool, 0.0),
                requests=signals["requests"].get(pool, 0.0),
                # A pool whose workers export no such series has not been observed
                # refusing (None); no traffic, by contrast, is zero load.
                refusals=signals["refusals"].get(pool),
                queue_depth=signals["queue_depth"].get(pool),
                backlog_characters=signals["backlog_characters"].get(pool),
            ) for pool in sorted(names)})
        return loads

    def _client(self, url: str) -> PrometheusConnect:
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                session = requests.Session()
                session.mount(url, HTTPAdapter(pool_maxsize=POOL_SIZE,
                                               max_retries=Retry(total=0)))
                client = PrometheusConnect(url=url, retry=Retry(total=0), session=session)
                self._clients[url] = client
            return client

    def instant(self, url: str, query: str, timeout: float) -> Series:
        """One instant query: (labels, value) per series."""
        try:
            result = self._client(url).custom_query(query, timeout=timeout)
        except (requests.RequestException, PrometheusApiClientException) as exc:
            raise MetricsUnavailable(f"Prometheus at {url}: {_short(exc)}") from exc
        except (ValueError, KeyError) as exc:  # not JSON, or not a query answer
            raise MetricsUnavailable(f"Prometheus at {url}: bad answer ({exc})") from exc
        series: Series = []
        for item in result or []:
            try:
                series.append((dict(item.get("metric") or {}), float(item["value"][1])))
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise MetricsUnavailable(f"Prometheus at {url}: bad sample {item!r}") from exc
        return series


def _add(pools: dict[str, float], labels: Mapping[str, str], value: float) -> None:
    if math.isfinite(value):  # NaN: a rate over no samples
        pool = labels.get("pool", "")
        pools[pool] = pools.get(pool, 0.0) + value


def _short(exc: Exception) -> str:
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or unreachable"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return str(exc)[:200]
