"""What the controller sees: request counters as Prometheus would scrape and rate them.

The worker's `tts_characters_total` and `tts_requests_total` count requests as they
arrive. Prometheus scrapes them every `scrape_seconds`; `rate(x[W])` at time `now` uses
the samples inside the window that ends at the newest scrape, so it is

    (C(s) - C(s - W + scrape)) / (W - scrape),   s = newest scrape at or before now

which lags a change in load by up to one scrape interval plus the window. Before the
trace starts the counters are extrapolated at the trace's first-five-minutes rate, as if
that load had been running: every policy then starts in its steady state rather than
cold, which no one would run in production.
"""

from __future__ import annotations

import math

import numpy as np

from elastic_tts.simulator.trace import FloatArray, Trace

SCRAPE_SECONDS = 15
SHORT_WINDOW = 60
LONG_WINDOW = 300
WARM_SECONDS = 300


class PrometheusView:
    def __init__(self, trace: Trace, scrape_seconds: int = SCRAPE_SECONDS) -> None:
        self.scrape = scrape_seconds
        seconds = trace.times.astype(np.int64)
        length = int(trace.duration)
        self.seconds = length
        chars = np.bincount(seconds, weights=trace.chars.astype(np.float64), minlength=length)
        requests = np.bincount(seconds, minlength=length).astype(np.float64)
        self._counters: dict[str, FloatArray] = {
            "characters": np.concatenate(([0.0], np.cumsum(chars))),
            "requests": np.concatenate(([0.0], np.cumsum(requests))),
        }
        warm = min(WARM_SECONDS, length)
        self._prior = {
            metric: float(counter[warm] / warm) if warm else 0.0
            for metric, counter in self._counters.items()
        }

    def counter(self, metric: str, second: int) -> float:
        """The counter's value at the start of `second` (arrivals before it)."""
        values = self._counters[metric]
        if second < 0:
            return self._prior[metric] * second
        return float(values[min(second, self.seconds)])

    def newest_scrape(self, now: float) -> int:
        return math.floor(now / self.scrape) * self.scrape

    def rate(self, metric: str, now: float, window: int) -> float:
        newest = self.newest_scrape(now)
        oldest = newest - window + self.scrape
        return (self.counter(metric, newest) - self.counter(metric, oldest)) / (newest - oldest)

    def per_minute(self, metric: str) -> FloatArray:
        """Per-second mean of each whole minute, in hindsight (what the oracle knows)."""
        values = self._counters[metric]
        minutes = math.ceil(self.seconds / 60)
        edges = np.minimum(np.arange(minutes + 1) * 60, self.seconds)
        result: FloatArray = np.diff(values[edges]) / 60.0
        return result
