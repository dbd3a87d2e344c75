"""The PNG timeline: load, elastic-tts replicas stacked per pool with spot events, each
policy's cost rate, and the latency panel (per minute: elastic-tts's p95 latency as a
share of each request's SLO, and its share of requests within the SLO).

Returns PNG bytes; the command writes them (the simulator itself writes no files).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display: a laptop, CI, or a container

import matplotlib.pyplot as plt
import numpy as np

from elastic_tts.simulator.compare import POLICY_NAMES, Comparison
from elastic_tts.simulator.engine import RunResult, slo_limits
from elastic_tts.simulator.prometheus import TraceRates

SPOT_MARKS = {"interruption": ("x", "tab:red"), "wave": ("v", "darkred")}


def per_minute(result: RunResult, minutes: int) -> np.ndarray:
    """Billed replicas per pool at the start of each minute, from the step timeline."""
    marks = np.arange(minutes) * 60.0
    rows = np.searchsorted(result.timeline.times, marks, side="right") - 1
    counts = result.timeline.billed[np.maximum(rows, 0)]
    counts[rows < 0] = 0
    return counts


def latency_by_minute(comparison: Comparison, result: RunResult, minutes: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(p95 of latency / SLO, share within SLO) per minute of arrival; NaN when empty."""
    trace = comparison.trace
    ratio = result.latency / slo_limits(comparison.spec, trace.chars.astype(np.float64))
    minute = np.minimum((trace.times // 60).astype(np.int64), minutes - 1)
    order = np.argsort(minute, kind="stable")
    edges = np.searchsorted(minute[order], np.arange(minutes + 1))
    p95 = np.full(minutes, np.nan)
    within = np.full(minutes, np.nan)
    for m in range(minutes):
        part = ratio[order[edges[m]:edges[m + 1]]]
        if part.size:
            p95[m] = float(np.quantile(part, 0.95, method="inverted_cdf"))
            within[m] = float(np.count_nonzero(part <= 1.0)) / part.size
    return p95, within


def render_png(comparison: Comparison) -> bytes:
    trace, spec = comparison.trace, comparison.spec
    minutes = max(1, int(np.ceil(trace.duration / 60)))
    hours = np.arange(minutes) / 60.0
    load = TraceRates(trace).per_bucket("characters", 60)[:minutes]
    figure, (top, middle, costs, latency) = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    figure.suptitle(f"elastic-tts simulate: {trace.name} ({comparison.dispatch} dispatch, "
                    f"seed {comparison.seed})")

    top.plot(hours, load, color="black", linewidth=0.8)
    top.set_ylabel("load (chars/s)")

    ours = comparison.results["elastic-tts"]
    stacked = per_minute(ours, minutes)
    middle.stackplot(hours, stacked.T, labels=list(ours.pools), step="post", alpha=0.8)
    if comparison.oracle is not None:
        oracle = comparison.oracle.result
        middle.step(hours, per_minute(oracle, minutes).sum(axis=1), where="post",
                    color="black", linewidth=0.7, linestyle="--", label="oracle@SLO (all pools)")
    for start, end in comparison.spot.shortages:
        middle.axvspan(start / 3600, end / 3600, color="grey", alpha=0.15, linewidth=0)
    ceiling = max(1.0, float(stacked.sum(axis=1).max()))
    for what, (marker, colour) in SPOT_MARKS.items():
        times = [t / 3600 for t, _, kind in ours.spot_events if kind == what]
        if times:
            middle.plot(times, [ceiling * 1.02] * len(times), linestyle="none", marker=marker,
                        color=colour, markersize=5, label=f"spot {what}")
    middle.set_ylabel("elastic-tts replicas\n(grey: spot shortage)")
    middle.legend(loc="upper left", fontsize="small")

    for name in POLICY_NAMES:
        result = comparison.results.get(name)
        if result is None:
            continue
        rate = per_minute(result, minutes) @ np.asarray(result.prices)
        costs.step(hours, rate, where="post", linewidth=1.0, label=f"{name} ${result.cost:.2f}")
    costs.set_ylabel("cost rate ($/h)")
    costs.legend(loc="upper left", fontsize="small", ncol=3)

    p95, within = latency_by_minute(comparison, ours, minutes)
    latency.plot(hours, np.minimum(p95, 3.0), color="tab:blue", linewidth=0.8,
                 label="p95 latency / SLO (capped at 3)")
    latency.axhline(1.0, color="black", linewidth=0.6, linestyle=":")
    latency.set_ylabel("elastic-tts p95 / SLO")
    share = latency.twinx()
    share.plot(hours, within * 100, color="tab:green", linewidth=0.8, label="% within SLO")
    share.set_ylabel("% within SLO")
    share.set_ylim(0, 101)
    latency.set_xlabel(f"hours from {spec.schedule.timezone} start of trace")
    latency.legend(loc="lower left", fontsize="small")
    share.legend(loc="lower right", fontsize="small")
    for axis in (top, middle, costs, latency):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
