"""Figures per policy, the table people read, the comparison at equal SLO, the JSON.

- cost: dollars for every replica-second billed, request to removal (a spot replica left
  Pending by a shortage from the shortage's end: docs/simulator.md, Billing).
- cost_vs_floor / cost_vs_oracle: cost / the work floor, and / the cheapest oracle variant
  whose within-SLO share is at least elastic-tts's (None when no variant reaches it).
- slo_attainment: fraction of requests answered within latencySLOSeconds x
  max(1, characters/100), measured as the client sees it: from the first attempt to the
  final answer, retries after 429 included; a request never answered counts as a miss.
- latency_p50/p95/p99: seconds; null when more than that share was never answered.
- scale_events: how many times a pool's desired replica count changed.
- gpu_hours: replica-hours on GPU pools.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
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
    cost_vs_floor: float | None
    cost_vs_oracle: float | None
    slo_attainment: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    scale_events: int
    gpu_hours: float
    refused_share: float  # 429s per request


def summarise(result: RunResult, limits: np.ndarray, floor: float | None,
              oracle: float | None) -> Summary:
    # inverted_cdf never interpolates, so requests never answered (inf) give inf, not nan
    p50, p95, p99 = (float(v) for v in np.percentile(result.latency, [50, 95, 99],
                                                     method="inverted_cdf"))
    gpu_seconds = sum(s for s, g in zip(result.replica_seconds, result.gpu, strict=True) if g)
    return Summary(
        name=result.policy,
        cost=result.cost,
        cost_vs_floor=result.cost / floor if floor else None,
        cost_vs_oracle=result.cost / oracle if oracle else None,
        slo_attainment=float(np.count_nonzero(result.latency <= limits)) / limits.size,
        latency_p50=p50, latency_p95=p95, latency_p99=p99,
        scale_events=result.scale_events,
        gpu_hours=gpu_seconds / 3600.0,
        refused_share=result.refusals / max(1, limits.size),
    )


def _limits(comparison: Comparison) -> np.ndarray:
    return slo_limits(comparison.spec, comparison.trace.chars.astype(np.float64))


def oracle_cost(comparison: Comparison) -> float | None:
    return comparison.oracle.result.cost if comparison.oracle is not None else None


def summaries(comparison: Comparison) -> dict[str, Summary]:
    limits = _limits(comparison)
    floor, oracle = comparison.work_floor, oracle_cost(comparison)
    return {name: summarise(result, limits, floor, oracle)
            for name, result in comparison.results.items()}


def other_dispatch_summary(comparison: Comparison) -> Summary | None:
    if comparison.other_dispatch is None:
        return None
    return summarise(comparison.other_dispatch, _limits(comparison), comparison.work_floor,
                     oracle_cost(comparison))


def oracle_summary(comparison: Comparison) -> Summary | None:
    if comparison.oracle is None:
        return None
    return summarise(comparison.oracle.result, _limits(comparison), comparison.work_floor,
                     comparison.oracle.result.cost)


def equal_slo_line(figures: dict[str, Summary]) -> str:
    """The benchmark's comparison: the cheapest policy at elastic-tts's own within-SLO
    share or better, and what elastic-tts saves (or loses) against it. (The user's
    verdict, at a chosen SLO target and per month, is simulator.verdict.)"""
    ours = figures.get("elastic-tts")
    if ours is None:
        return "no elastic-tts run"
    level = ours.slo_attainment
    rivals = [s for n, s in figures.items() if n != "elastic-tts"
              and s.slo_attainment + 1e-12 >= level]
    share = f"{math.floor(level * 10000) / 100:.2f} %"
    if not rivals:
        best = max((s for n, s in figures.items() if n != "elastic-tts"),
                   key=lambda s: s.slo_attainment, default=None)
        closest = f"; the closest, {best.name}, reaches {best.slo_attainment:.2%} " \
                  f"for ${best.cost:.2f}" if best else ""
        return f"at equal SLO: elastic-tts is the only policy at >= {share} within SLO " \
               f"(${ours.cost:.2f}){closest}"
    cheapest = min(rivals, key=lambda s: s.cost)
    if ours.cost <= cheapest.cost:
        saving = 1 - ours.cost / cheapest.cost
        return (f"at equal SLO: elastic-tts is the cheapest at >= {share} within SLO: "
                f"${ours.cost:.2f}, {saving:.1%} less than {cheapest.name} "
                f"(${cheapest.cost:.2f}, {cheapest.slo_attainment:.2%})")
    loss = ours.cost / cheapest.cost - 1
    return (f"at equal SLO: {cheapest.name} is the cheapest at >= {share} within SLO: "
            f"${cheapest.cost:.2f} ({cheapest.slo_attainment:.2%}); elastic-tts costs "
            f"{loss:.1%} more (${ours.cost:.2f})")


def trace_info(comparison: Comparison) -> dict[str, Any]:
    trace = comparison.trace
    start = datetime.fromtimestamp(trace.start_epoch, UTC).isoformat()
    spot = comparison.spot
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
            "interruptions_per_replica_hour": spot.interruptions_per_hour,
            "notice_seconds": spot.notice_seconds,
            "shortages": [list(s) for s in spot.shortages],
            "waves": list(spot.waves),
        },
        "omitted": dict(comparison.omitted),
        "simulated_seconds": round(comparison.elapsed, 3),
    }


def _number(value: float | None) -> float | None:
    return round(value, 6) if value is not None and math.isfinite(value) else None


def _policy_json(summary: Summary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "cost": round(summary.cost, 6),
        "cost_vs_floor": _number(summary.cost_vs_floor),
        "cost_vs_oracle": _number(summary.cost_vs_oracle),
        "slo_attainment": round(summary.slo_attainment, 6),
        "latency_p50": _number(summary.latency_p50),
        "latency_p95": _number(summary.latency_p95),
        "latency_p99": _number(summary.latency_p99),
        "scale_events": summary.scale_events,
        "gpu_hours": round(summary.gpu_hours, 6),
        "refused_share": round(summary.refused_share, 6),
    }


def run_json(comparison: Comparison) -> dict[str, Any]:
    """One run (one seed) in the shape `--json` prints."""
    figures = summaries(comparison)
    oracle = comparison.oracle
    other = other_dispatch_summary(comparison)
    return {
        "seed": comparison.seed,
        "policies": {name: _policy_json(figures.get(name)) for name in POLICY_NAMES},
        "other_dispatch": None if other is None else {
            "dispatch": "service" if comparison.dispatch == "route" else "route",
            **(_policy_json(other) or {})},
        "bounds": {
            "work_floor": {"cost": round(comparison.work_floor, 6)},
            "oracle_same_slo": None if oracle is None else {
                "cost": round(oracle.result.cost, 6),
                "slo_attainment": round(oracle.slo_attainment, 6),
                "bucket_seconds": oracle.variant.bucket,
                "utilization": oracle.variant.utilization,
            },
            "oracle_variants": [
                {"bucket_seconds": b, "utilization": u, "slo_attainment": round(s, 6),
                 "cost": round(c, 6)} for b, u, s, c in comparison.oracle_measured],
        },
        "at_equal_slo": equal_slo_line(figures),
    }


def to_json(comparisons: Sequence[Comparison], plot: str | None = None) -> dict[str, Any]:
    first = comparisons[0]
    info = trace_info(first)
    info["plot"] = plot
    document: dict[str, Any] = {"trace": info, **run_json(first)}
    if len(comparisons) > 1:
        document["runs"] = [run_json(c) for c in comparisons]
        document["summary"] = seed_summary(comparisons)
    return document


def seed_summary(comparisons: Sequence[Comparison]) -> dict[str, dict[str, float]]:
    """Per policy over the seeds: median and worst cost and within-SLO share."""
    per_seed = [summaries(c) for c in comparisons]
    result: dict[str, dict[str, float]] = {}
    for name in POLICY_NAMES:
        rows = [f[name] for f in per_seed if name in f]
        if not rows:
            continue
        costs = [r.cost for r in rows]
        slos = [r.slo_attainment for r in rows]
        result[name] = {"cost_median": round(statistics.median(costs), 6),
                        "cost_worst": round(max(costs), 6),
                        "slo_median": round(statistics.median(slos), 6),
                        "slo_worst": round(min(slos), 6)}
    oracles = [c.oracle.result.cost for c in comparisons if c.oracle is not None]
    if oracles:
        result["oracle_same_slo"] = {"cost_median": round(statistics.median(oracles), 6),
                                     "cost_worst": round(max(oracles), 6)}
    result["work_floor"] = {"cost_median": round(statistics.median(
        [c.work_floor for c in comparisons]), 6)}
    return result


def _seconds(value: float) -> str:
    return f"{value:7.2f}" if math.isfinite(value) else "    inf"


def _ratio(value: float | None) -> str:
    return f"{value:8.2f}" if value is not None else f"{'-':>8}"


def table_rows(figures: dict[str, Summary]) -> list[str]:
    header = (f"{'policy':<26} {'cost $':>9} {'÷ floor':>8} {'÷ oracle':>8} "
              f"{'within SLO':>10} {'429/req':>7} {'p50 s':>7} {'p95 s':>7} {'p99 s':>7} "
              f"{'scale ev':>8} {'GPU-h':>7}")
    rows = [header, "-" * len(header)]
    for summary in figures.values():
        rows.append(
            f"{summary.name:<26} {summary.cost:9.2f} {_ratio(summary.cost_vs_floor)} "
            f"{_ratio(summary.cost_vs_oracle)} {summary.slo_attainment:9.2%} "
            f"{summary.refused_share:7.3f} "
            f"{_seconds(summary.latency_p50)} {_seconds(summary.latency_p95)} "
            f"{_seconds(summary.latency_p99)} {summary.scale_events:8d} "
            f"{summary.gpu_hours:7.1f}"
        )
    return rows


def comparison_rows(comparison: Comparison) -> list[str]:
    figures = summaries(comparison)
    ordered = {name: figures[name] for name in POLICY_NAMES if name in figures}
    other = other_dispatch_summary(comparison)
    if other is not None:  # the same engine, requests spread the other way
        label = "plain Service" if comparison.dispatch == "route" else "HTTPRoute"
        ordered["other dispatch"] = replace(other, name=f"elastic-tts, {label}")
    oracle = oracle_summary(comparison)
    if oracle is not None and comparison.oracle is not None:
        variant = comparison.oracle.variant
        ordered["oracle"] = replace(
            oracle, name=f"oracle@SLO {variant.bucket}s u{variant.utilization:g}")
    rows = table_rows(ordered)
    rows.append(f"{'work floor':<26} {comparison.work_floor:9.2f} {1.0:8.2f}")
    if comparison.oracle is None:
        rows.append("oracle@SLO: no variant (buckets x utilisations) reached elastic-tts's "
                    "within-SLO share")
    return rows


def render_table(comparisons: Sequence[Comparison], plot: str | None = None) -> str:
    first = comparisons[0]
    trace = first.trace
    info = trace_info(first)
    lines = [
        f"trace     {trace.name}: {trace.requests:,} requests, "
        f"{int(trace.chars.sum()):,} characters over {trace.duration / 3600:.2f} h "
        f"from {info['start']}",
    ]
    lines += [f"          {note}" for note in trace.notes]
    pools = ", ".join(
        f"{p.name} ({p.accelerator} {p.capacity_type}, ${p.cost_per_hour:g}/h, "
        f"{p.throughput:g} chars/s)" for p in first.spec.pools.values())
    lines.append(f"pools     {pools}")
    how = ("HTTPRoute weights by ready capacity, then a random endpoint of the pool"
           if first.dispatch == "route" else "plain Service: a random endpoint per connection")
    lines.append(f"dispatch  {how}")
    elapsed = 0.0
    for comparison in comparisons:
        spot = comparison.spot
        lines.append("")
        lines.append(f"seed {comparison.seed}: spot {spot.interruptions_per_hour:g} "
                     f"interruptions per replica-hour, {spot.notice_seconds:g} s notice, "
                     f"{len(spot.shortages)} shortage(s), {len(spot.waves)} wave(s)")
        lines += comparison_rows(comparison)
        lines.append(equal_slo_line(summaries(comparison)))
        elapsed += comparison.elapsed
    if len(comparisons) > 1:
        lines.append("")
        lines.append("over seeds " + ", ".join(str(c.seed) for c in comparisons)
                     + ": median / worst")
        for name, row in seed_summary(comparisons).items():
            if "slo_median" in row:
                lines.append(f"  {name:<24} ${row['cost_median']:.2f} / ${row['cost_worst']:.2f}"
                             f"   {row['slo_median']:.2%} / {row['slo_worst']:.2%}")
            elif "cost_worst" in row:
                lines.append(f"  {name:<24} ${row['cost_median']:.2f} / ${row['cost_worst']:.2f}")
    for name, why in first.omitted.items():
        lines.append(f"{name}: not shown: {why}")
    lines.append("")
    lines.append("cost: replica-seconds billed from request to removal (Pending in a spot "
                 "shortage: from its end) at each pool's price; "
                 "SLO: latency <= "
                 f"{first.spec.scaling.latency_slo_seconds:g} s x max(1, chars/100), client-"
                 "side, first attempt to final answer")
    if plot:
        lines.append(f"timeline  {plot}")
    lines.append(f"simulated {len(comparisons)} seed(s) in {elapsed:.1f} s")
    if any("Azure" in n or "derived" in n for n in trace.notes):
        lines.append(f"trace data: {ATTRIBUTION}")
    return "\n".join(lines)
