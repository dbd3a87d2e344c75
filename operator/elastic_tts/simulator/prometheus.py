"""What the controller sees: the workers' counters and gauges as Prometheus scrapes them.

Prometheus scrapes every `scrape_seconds`; `rate(x[W])` at time `now` uses the samples
inside the window that ends at the newest scrape, so it is

    (C(s) - C(s - W + scrape)) / (W - scrape),   s = newest scrape at or before now

which lags a change in load by up to one scrape interval plus the window. The counters
are the workers' own (`Cluster.counters`): offered characters and requests counted once
per request when its first attempt reaches a worker, refusals (429s), and the backlog
and queue-depth gauges. Before the trace starts the counters are extrapolated at the
trace's first-five-minutes rate, as if that load had been running: every policy then
starts in its steady state rather than cold, which no one would run in production. A
replay of a service that was idle before the trace (`TraceRates(trace, warm=False)`, as
the e2e tier's load step starts) extrapolates them at zero instead.

`TraceRates` is the hindsight view of the trace itself (arrivals per second), used by the
bounds, the static-peak baseline and the plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from elastic_tts.simulator.trace import FloatArray, Trace

SCRAPE_SECONDS = 15
SHORT_WINDOW = 60
LONG_WINDOW = 300
BURST_WINDOW = 30
WARM_SECONDS = 300


@dataclass(frozen=True)
class MetricsModel:
    """How the controller's Prometheus is set up: its scrape interval and the windows the
    operator queries (`elastic-tts run --rate-windows --burst-window`). The defaults are
    the operator's and the chart's; the e2e tier runs 1 s scrapes and 2 s / 4 s / 8 s
    windows."""

    scrape_seconds: int = SCRAPE_SECONDS
    short_window: int = SHORT_WINDOW
    long_window: int = LONG_WINDOW
    burst_window: int = BURST_WINDOW  # two scrapes: the rate over the newest interval
CHARS, REQUESTS, REFUSALS, BACKLOG, QUEUE = range(5)


class TraceRates:
    """Arrivals per second of the trace, in hindsight."""

    def __init__(self, trace: Trace, warm: bool = True) -> None:
        """`warm`: the counters before the trace ran at its first five minutes' rate;
        False: the service was idle before it."""
        seconds = trace.times.astype(np.int64)
        self.seconds = int(trace.duration)
        self.chars: FloatArray = np.bincount(
            seconds, weights=trace.chars.astype(np.float64), minlength=self.seconds
        )[: self.seconds].astype(np.float64)
        self.requests: FloatArray = np.bincount(seconds, minlength=self.seconds)[
            : self.seconds].astype(np.float64)
        span = min(WARM_SECONDS, self.seconds) if warm else 0
        self.prior_chars = float(self.chars[:span].sum() / span) if span else 0.0
        self.prior_requests = float(self.requests[:span].sum() / span) if span else 0.0

    def per_second(self, metric: str) -> FloatArray:
        return self.chars if metric == "characters" else self.requests

    def per_bucket(self, metric: str, bucket: int) -> FloatArray:
        """Mean rate of each bucket of `bucket` seconds; the last, partial bucket is
        divided by its own length, not by `bucket`."""
        values = self.per_second(metric)
        count = math.ceil(self.seconds / bucket)
        edges = np.minimum(np.arange(count + 1) * bucket, self.seconds)
        sums = np.add.reduceat(values, edges[:-1]) if count else np.zeros(0)
        result: FloatArray = sums / np.diff(edges)
        return result


class Scraper:
    """Scrapes of the cluster's counters every `scrape_seconds`, and rates over them."""

    def __init__(self, rates: TraceRates, scrape_seconds: int = SCRAPE_SECONDS) -> None:
        self.scrape = scrape_seconds
        self.samples: list[tuple[float, float, float, float, float]] = []
        self._prior = (rates.prior_chars, rates.prior_requests, 0.0)

    def share(self, part: int, whole: int, now: float, window: int) -> float | None:
        """rate(part) / rate(whole) over the window; None when the whole is zero."""
        total = self.rate(whole, now, window)
        return self.rate(part, now, window) / total if total > 0 else None

    def record(self, sample: tuple[float, float, float, float, float]) -> None:
        self.samples.append(sample)

    def newest(self, now: float) -> int:
        return min(math.floor(now / self.scrape), len(self.samples) - 1)

    def _counter(self, which: int, scrape: int) -> float:
        if scrape < 0:
            return self._prior[which] * scrape * self.scrape
        return self.samples[scrape][which]

    def rate(self, which: int, now: float, window: int) -> float:
        newest = self.newest(now)
        back = max(1, window // self.scrape - 1)
        span = back * self.scrape
        return (self._counter(which, newest) - self._counter(which, newest - back)) / span

    def gauge(self, which: int, now: float, window: int) -> float:
        """avg_over_time(x[window]): the mean of the scrapes in (now - window, now]."""
        newest = self.newest(now)
        if newest < 0:
            return 0.0
        oldest = max(0, math.floor((now - window) / self.scrape) + 1)
        values = [self.samples[i][which] for i in range(min(oldest, newest), newest + 1)]
        return sum(values) / len(values)
