"""Figures per policy, the table people read, and the JSON scripts read.

- cost: dollars for every replica-second billed, request to removal.
- cost_vs_oracle: cost / the oracle's cost (the hindsight lower bound).
- slo_attainment: fraction of requests whose latency (queue wait + service) is within
  latencySLOSeconds x max(1, characters/100); requests never served count as misses.
- latency_p50/p95/p99: seconds; null when more than that share was never served.
- scale_events: how many times a pool's desired replica count changed.
- gpu_hours: replica-hours on GPU pools.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from elastic_tts.simulator.compare import POLICY_NAMES, Comparison
from elastic_tts.simulator.engine import RunResult, slo_limits
from elastic_tts.simulator.trace import ATTRIBUTION


@dataclass(frozen=True)
class Summary:
    name: str
    cost: float
    cost_vs_oracle: float | None
    slo_attainment: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    scale_events: int
    gpu_hours: float


def summarise(result: RunResult, limits: np.ndarray, oracle_cost: float | None) -> Summary:
    p50, p95, p99 = (float(v) for v in np.percentile(result.latency, [50, 95, 99]))
    gpu_seconds = sum(s for s, g in zip(result.replica_seconds, result.gpu, strict=True) if g)
    return Summary(
        name=result.policy,
        cost=result.cost,
        cost_vs_oracle=result.cost / oracle_cost if oracle_cost else None,
        slo_attainment=float(np.count_nonzero(result.latency <= limits)) / limits.size,
        latency_p50=p50, latency_p95=p95, latency_p99=p99,
        scale_events=result.scale_events,
        gpu_hours=gpu_seconds / 3600.0,
    )


def summaries(comparison: Comparison) -> dict[str, Summary]:
    limits = slo_limits(comparison.spec, comparison.trace.chars.astype(np.float64))
    oracle = comparison.results.get("oracle")
    oracle_cost = oracle.cost if oracle is not None else None
    return {name: summarise(result, limits, oracle_cost)
            for name, result in comparison.results.items()}


def other_dispatch_summary(comparison: Comparison) -> Summary | None:
    if comparison.other_dispatch is None:
        return None
    limits = slo_limits(comparison.spec, comparison.trace.chars.astype(np.float64))
    oracle = comparison.results.get("oracle")
    return summarise(comparison.other_dispatch, limits, oracle.cost if oracle else None)


def trace_info(comparison: Comparison) -> dict[str, Any]:
    trace = comparison.trace
    start = datetime.fromtimestamp(trace.start_epoch, UTC).isoformat()
    return {
        "name": trace.name,
        "requests": trace.requests,
        "characters": int(trace.chars.sum()),
        "seconds": trace.duration,
        "start": start,
        "transformations": list(trace.notes),
        "dispatch": comparison.dispatch,
        "seed": comparison.seed,
        "spot": {
            "interruptions_per_replica_hour": comparison.spot.interruptions_per_hour,
            "notice_seconds": comparison.spot.notice_seconds,
            "shortages": [list(s) for s in comparison.spot.shortages],
        },
        "omitted": dict(comparison.omitted),
        "simulated_seconds": round(comparison.elapsed, 3),
    }


def _number(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def to_json(comparison: Comparison, plot: str | None = None) -> dict[str, Any]:
    figures = summaries(comparison)
    info = trace_info(comparison)
    info["plot"] = plot
    policies: dict[str, Any] = {}
    for name in POLICY_NAMES:
        summary = figures.get(name)
        policies[name] = None if summary is None else {
            "cost": round(summary.cost, 6),
            "cost_vs_oracle": None if summary.cost_vs_oracle is None
            else round(summary.cost_vs_oracle, 6),
            "slo_attainment": round(summary.slo_attainment, 6),
            "latency_p50": _number(summary.latency_p50),
            "latency_p95": _number(summary.latency_p95),
            "latency_p99": _number(summary.latency_p99),
            "scale_events": summary.scale_events,
            "gpu_hours": round(summary.gpu_hours, 6),
        }
    return {"trace": info, "policies": policies}


def _seconds(value: float) -> str:
    return f"{value:7.2f}" if math.isfinite(value) else "    inf"


def table_rows(figures: dict[str, Summary]) -> list[str]:
    header = (f"{'policy':<24} {'cost $':>9} {'÷ oracle':>8} {'within SLO':>10} "
              f"{'p50 s':>7} {'p95 s':>7} {'p99 s':>7} {'scale events':>12} {'GPU-h':>8}")
    rows = [header, "-" * len(header)]
    for summary in figures.values():
        ratio = f"{summary.cost_vs_oracle:8.2f}" if summary.cost_vs_oracle is not None \
            else f"{'-':>8}"
        rows.append(
            f"{summary.name:<24} {summary.cost:9.2f} {ratio} {summary.slo_attainment:9.2%} "
            f"{_seconds(summary.latency_p50)} {_seconds(summary.latency_p95)} "
            f"{_seconds(summary.latency_p99)} {summary.scale_events:12d} "
            f"{summary.gpu_hours:8.1f}"
        )
    return rows


def render_table(comparison: Comparison, plot: str | None = None) -> str:
    trace = comparison.trace
    info = trace_info(comparison)
    lines = [
        f"trace     {trace.name}: {trace.requests:,} requests, "
        f"{int(trace.chars.sum()):,} characters over {trace.duration / 3600:.2f} h "
        f"from {info['start']}",
    ]
    lines += [f"          {note}" for note in trace.notes]
    pools = ", ".join(
        f"{p.name} ({p.accelerator} {p.capacity_type}, ${p.cost_per_hour:g}/h, "
        f"{p.throughput:g} chars/s)" for p in comparison.spec.pools.values())
    lines.append(f"pools     {pools}")
    lines.append(f"dispatch  {comparison.dispatch}"
                 + (" (HTTPRoute weights follow ready capacity)"
                    if comparison.dispatch == "capacity-weighted" else " (plain Service)"))
    spot = comparison.spot
    lines.append(f"spot      {spot.interruptions_per_hour:g} interruptions per replica-hour, "
                 f"{spot.notice_seconds:g} s notice, {len(spot.shortages)} shortage(s); "
                 f"seed {comparison.seed}")
    lines.append("")
    figures = summaries(comparison)
    ordered = {name: figures[name] for name in POLICY_NAMES if name in figures}
    other = other_dispatch_summary(comparison)
    if other is not None:  # the same engine, requests spread the other way
        ordered["other dispatch"] = replace(other, name=f"elastic-tts, {_other(comparison)}")
    lines += table_rows(ordered)
    for name, why in comparison.omitted.items():
        lines.append(f"{name}: not shown: {why}")
    lines.append("")
    lines.append("cost: replica-seconds billed from request to removal at each pool's price; "
                 "SLO: latency <= "
                 f"{comparison.spec.scaling.latency_slo_seconds:g} s x max(1, chars/100)")
    if plot:
        lines.append(f"timeline  {plot}")
    lines.append(f"simulated {len(comparison.results) + (1 if other else 0)} runs in "
                 f"{comparison.elapsed:.1f} s")
    if any("Azure" in n or "derived" in n for n in trace.notes):
        lines.append(f"trace data: {ATTRIBUTION}")
    return "\n".join(lines)


def _other(comparison: Comparison) -> str:
    return "round-robin" if comparison.dispatch == "capacity-weighted" else "capacity-weighted"
