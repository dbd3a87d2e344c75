"""`LoadSource` over prometheus-api-client: every PromQL query the operator runs.

The workers' counters (worker/tts_worker/metric_names.py: offered load, each request
counted once) carry ``namespace``, ``service`` and ``pool``; the built-in query rates
each signal by service and pool over each window, every signal and window in one round
trip, each series tagged with ``signal`` and ``window`` labels. A spec's
``scaling.prometheus.query`` replaces the built-in query for the signal the engine scales
on; it may use $service, $namespace, $window and $metric.

One answer of the built-in query serves every service of a namespace (`_Batch`), as
client-go's shared informers serve every controller from one watch. It is asked again
once it is a quarter of the shortest window old (7.5 s for a 30 s burst window, about a
default scrape interval), by the tick that finds it so, while the others of the
namespace go on reading it. At 500 services that is two queries per interval instead of
500: each tick had spent a third of its CPU percent-encoding and reading its own 3 KB
query, and Prometheus evaluated 15 selectors for each (bench/bench_operator.py). A
failed ask answers as long. An override is per service and asked by its own tick.

One PrometheusConnect per URL, reused by every service's tick, with a connection pool
as large as the ticks that run at once (requests' default of 10 would close and reopen
connections under 16 tick threads). Retries are off here: the control loop itself
retries on the next tick, and a slow Prometheus must not stretch a tick past its
interval.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from elastic_tts.policy.durations import parse_duration
from elastic_tts.reconcile.ports import LoadQuery, MetricsUnavailable, PoolLoad, WindowLoad

SELECTOR = 'namespace="$namespace"'
RATE = f"sum by (service, pool) (rate($metric{{{SELECTOR}}}[$window]))"
MEAN = f"sum by (service, pool) (avg_over_time($metric{{{SELECTOR}}}[$window]))"
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
FRESH_SHARE = 1 / 4  # of the shortest window: how long one answer serves a namespace
# window -> signal -> pool -> value, for one service
ServiceLoad = dict[str, dict[str, dict[str, float]]]


def render_query(template: str, service: str, namespace: str, window: str,
                 metric: str) -> str:
    """Fill the placeholders; label values are quoted for PromQL."""
    return (template.replace("$service", _escape(service))
            .replace("$namespace", _escape(namespace))
            .replace("$window", window).replace("$metric", metric))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def builtin_query(namespace: str, windows: tuple[str, ...]) -> str:
    """Every signal of every service of `namespace`, by pool, over each of ``windows``,
    in one query."""
    parts = [
        'label_replace(label_replace('
        f'{render_query(template, "", namespace, window, name)}, '
        f'"signal", "{signal}", "", ""), "window", "{window}", "", "")'
        for window in windows for signal, (name, template) in SIGNALS.items()
    ]
    return " or ".join(parts)


@dataclass
class _Batch:
    """The built-in query's last answer for one namespace, split by service.

    Stale while revalidated: the tick that finds the answer old asks again, and the
    others of the namespace read the old answer meanwhile rather than wait for the new
    one (a 500-service answer takes Prometheus a second or two); only before the first
    answer do they wait."""

    windows: tuple[str, ...]
    clock: Callable[[], float]
    changed: threading.Condition = field(default_factory=threading.Condition)
    asked_at: float = -math.inf  # clock() when the last ask began
    asking: bool = False
    by_service: dict[str, ServiceLoad] | None = None  # None: not answered yet
    failure: MetricsUnavailable | None = None  # the last ask's, when it failed
    max_age: float = field(init=False)

    def __post_init__(self) -> None:
        self.max_age = FRESH_SHARE * min(parse_duration(w) for w in self.windows)

    def answer(self, ask: Callable[[], Series]) -> dict[str, ServiceLoad]:
        with self.changed:
            while self.asking and self.by_service is None and self.failure is None:
                self.changed.wait()  # the first answer: there is nothing older to read
            if self.asking or self.clock() - self.asked_at < self.max_age:
                return self._last()
            self.asking, self.asked_at = True, self.clock()
        by_service: dict[str, ServiceLoad] | None = None
        failure: MetricsUnavailable | None = None
        try:
            by_service = _split(ask(), self.windows)
        except MetricsUnavailable as exc:
            failure = exc
        finally:  # whatever else goes wrong, the next tick asks again
            with self.changed:
                self.asking = False
                if by_service is not None or failure is not None:
                    self.by_service, self.failure = by_service, failure
                self.changed.notify_all()
        with self.changed:
            return self._last()

    def _last(self) -> dict[str, ServiceLoad]:
        if self.failure is not None:
            raise self.failure
        if self.by_service is None:  # the first ask broke: not the same as no load
            raise MetricsUnavailable("Prometheus has not answered yet")
        return self.by_service


def _split(series: Series, windows: tuple[str, ...]) -> dict[str, ServiceLoad]:
    by_service: dict[str, ServiceLoad] = {}
    for labels, value in series:
        window, signal = labels.get("window", ""), labels.get("signal", "")
        if window in windows and signal in SIGNALS:
            service = by_service.setdefault(labels.get("service", ""), {})
            _add(service.setdefault(window, {}).setdefault(signal, {}), labels, value)
    return by_service


class PrometheusLoadSource:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 concurrency: int = 1) -> None:
        """`concurrency`: the threads that ask at once; as many connections are kept open
        to each Prometheus, one a tick's read."""
        self._clock = clock
        self._connections = concurrency
        self._clients: dict[str, PrometheusConnect] = {}
        self._batches: dict[tuple[str, str, tuple[str, ...], float], _Batch] = {}
        self._lock = threading.Lock()

    def load(self, query: LoadQuery) -> dict[str, WindowLoad]:
        source = query.source
        answer = self._batch(query).answer(
            lambda: self.instant(source.url, builtin_query(query.namespace, query.windows),
                                 source.timeout_seconds))
        mine = answer.get(query.service, {})
        loads = {}
        for window in query.windows:
            # Read, never changed: an override below replaces its signal's entry.
            signals = {signal: mine.get(window, {}).get(signal, {}) for signal in SIGNALS}
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

    def _batch(self, query: LoadQuery) -> _Batch:
        source = query.source
        key = (source.url, query.namespace, query.windows, source.timeout_seconds)
        with self._lock:
            batch = self._batches.get(key)
            if batch is None:
                batch = self._batches[key] = _Batch(query.windows, self._clock)
            return batch

    def _client(self, url: str) -> PrometheusConnect:
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                session = requests.Session()
                # A namespace's answer is megabytes: inflating it cost more CPU than
                # parsing it (0.33 s against 0.19 s at 500 services, cProfile).
                session.headers["Accept-Encoding"] = "identity"
                session.mount(url, HTTPAdapter(pool_maxsize=self._connections,
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
