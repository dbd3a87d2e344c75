"""The PNG timeline: load, elastic-tts replicas stacked per pool, and cost rate per policy.

Returns PNG bytes; the command writes them (the simulator itself writes no files).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display: a laptop, CI, or a container

import matplotlib.pyplot as plt
import numpy as np

from elastic_tts.simulator.compare import POLICY_NAMES, Comparison
from elastic_tts.simulator.engine import RunResult
from elastic_tts.simulator.prometheus import PrometheusView


def per_minute(result: RunResult, minutes: int) -> np.ndarray:
    """Billed replicas per pool at the start of each minute, from the step timeline."""
    marks = np.arange(minutes) * 60.0
    rows = np.searchsorted(result.timeline.times, marks, side="right") - 1
    counts = result.timeline.billed[np.maximum(rows, 0)]
    counts[rows < 0] = 0
    return counts


def render_png(comparison: Comparison) -> bytes:
    trace, spec = comparison.trace, comparison.spec
    minutes = max(1, int(np.ceil(trace.duration / 60)))
    hours = np.arange(minutes) / 60.0
    load = PrometheusView(trace).per_minute("characters")[:minutes]
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    figure.suptitle(f"elastic-tts simulate: {trace.name} ({comparison.dispatch} dispatch)")

    top.plot(hours, load, color="black", linewidth=0.8)
    top.set_ylabel("load (chars/s)")

    ours = comparison.results["elastic-tts"]
    stacked = per_minute(ours, minutes)
    middle.stackplot(hours, stacked.T, labels=list(ours.pools), step="post", alpha=0.8)
    oracle = comparison.results.get("oracle")
    if oracle is not None:
        middle.step(hours, per_minute(oracle, minutes).sum(axis=1), where="post",
                    color="black", linewidth=0.7, linestyle="--", label="oracle (all pools)")
    middle.set_ylabel("elastic-tts replicas")
    middle.legend(loc="upper left", fontsize="small")

    for name in POLICY_NAMES:
        result = comparison.results.get(name)
        if result is None:
            continue
        rate = per_minute(result, minutes) @ np.asarray(result.prices)
        bottom.step(hours, rate, where="post", linewidth=1.0, label=f"{name} ${result.cost:.2f}")
    bottom.set_ylabel("cost rate ($/h)")
    bottom.set_xlabel(f"hours from {spec.schedule.timezone} start of trace")
    bottom.legend(loc="upper left", fontsize="small", ncol=2)
    for axis in (top, middle, bottom):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
