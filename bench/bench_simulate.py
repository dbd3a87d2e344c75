"""Cost at equal SLO: elastic-tts against what platform engineers run, and two bounds.

Three traces with the default pools, seeds 1-3 each, side by side in one run:
  (a) the built-in diurnal day (24 h at 1 s steps; its seed-1 wall time is the speed figure);
  (b) Azure LLM 2023 conversation, real timing, rate x4;
  (c) Azure LLM 2023 code, real timing (very bursty).
Every run has every policy and both bounds (the work floor; the oracle at elastic-tts's
SLO, swept over bucket lengths and utilisations). Clients honour the workers'
retry-after-ms (ADMISSION.md); a sensitivity run per trace (seed 1) has clients that read
only Retry-After. Each baseline is then also tuned: its
targetUtilization searched for the cheapest setting that reaches elastic-tts's SLO, the
strongest configuration a sceptic would write. Targets (issue 10), at the worst seed:
  day and conv x4: >= 99.5 % within SLO; cost <= 1.10 x oracle@SLO; no baseline, tuned or
  not, reaches elastic-tts's SLO for less; on the day >= 60 % cheaper than static-gpu;
  code: >= 94 % within SLO at a cost below static-gpu's.
Every figure is printed whether or not it meets its target. No constant is tuned to these
traces. Trace data: Azure Public Dataset, AzureLLMInferenceDataset2023 (CC-BY 4.0), Patel
et al., "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from elastic_tts.policy import TTSServiceSpec
from elastic_tts.simulator.cluster import WorkerModel
from elastic_tts.simulator.compare import (
    Comparison,
    Tuned,
    compare,
    tune_baselines,
    within_slo,
)
from elastic_tts.simulator.defaults import default_spec
from elastic_tts.simulator.engine import simulate
from elastic_tts.simulator.policies import ElasticTTS
from elastic_tts.simulator.report import comparison_rows, equal_slo_line, summaries
from elastic_tts.simulator.trace import Trace, builtin_day, scale
from elastic_tts.simulator.tracefile import load_trace_file

TRACES = Path(__file__).resolve().parents[1] / ".." / "shared" / "traces"
SEEDS = (1, 2, 3)
SPEED_TARGET_SECONDS = 30.0


def tuned_rows(comparison: Comparison, tuned: dict[str, Tuned]) -> list[str]:
    ours = summaries(comparison)["elastic-tts"]
    rows = [f"   tuned to elastic-tts's {ours.slo_attainment:.2%} (targetUtilization searched):"]
    for name, entry in tuned.items():
        if entry.result is None:
            best = max(entry.measured, key=lambda row: row[2])
            rows.append(f"     {name:<16} never reaches it (best {best[2]:.2%} at u{best[1]:g})")
        else:
            rows.append(f"     {name:<16} u{entry.utilization:<5g} ${entry.result.cost:9.2f}  "
                        f"{entry.result.cost / ours.cost:5.2f}x elastic-tts")
    return rows


def cheapest_rival(comparison: Comparison, tuned: dict[str, Tuned]) -> tuple[str, float] | None:
    """The cheapest baseline, as configured or tuned, at elastic-tts's SLO or better."""
    figures = summaries(comparison)
    level = figures["elastic-tts"].slo_attainment
    found = [(s.cost, n) for n, s in figures.items()
             if n != "elastic-tts" and s.slo_attainment + 1e-12 >= level]
    found += [(t.result.cost, f"{n} (u{t.utilization:g})") for n, t in tuned.items()
              if t.result is not None]
    if not found:
        return None
    cost, name = min(found)
    return name, cost


Row = tuple[float, float | None, float | None, float]  # cost, ÷ floor, ÷ oracle, SLO


def _span(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    low, high = min(known), max(known)
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}"


def markdown(label: str, rows: dict[str, list[Row]], notes: dict[str, list[str]]
             ) -> list[str]:
    """The README's table rows for one trace: per policy, the median and worst cost over
    the seeds, the spread of its ratios, and its worst within-SLO share."""
    out = []
    for index, (name, seen) in enumerate(rows.items()):
        costs = [r[0] for r in seen]
        cost = f"${statistics.median(costs):.2f} / ${max(costs):.2f}"
        slo = "-" if name == "work floor" else f"{min(r[3] for r in seen):.2%}"
        shown = f"**{name}**" if name == "elastic-tts" else name
        if notes.get(name):
            shown += f" ({', '.join(dict.fromkeys(notes[name]))})"
        if len(seen) < len(SEEDS):
            shown += f" [{len(seen)} of {len(SEEDS)} seeds]"
        out.append(f"| {label if index == 0 else ''} | {shown} | {cost} | "
                   f"{_span([r[1] for r in seen])} | {_span([r[2] for r in seen])} | {slo} |")
    return out


def collect(rows: dict[str, list[Row]], notes: dict[str, list[str]], comparison: Comparison,
            tuned: dict[str, Tuned], allspot: Row) -> None:
    figures = summaries(comparison)
    floor = comparison.work_floor
    oracle = comparison.oracle.result.cost if comparison.oracle is not None else None

    def add(name: str, cost: float, slo: float, note: str = "") -> None:
        rows.setdefault(name, []).append(
            (cost, cost / floor if floor else None, cost / oracle if oracle else None, slo))
        if note:
            notes.setdefault(name, []).append(note)

    for name, summary in figures.items():
        add(name, summary.cost, summary.slo_attainment)
    other = comparison.other_dispatch
    if other is not None:
        add("elastic-tts, plain Service" if comparison.dispatch == "route"
            else "elastic-tts, HTTPRoute", other.cost,
            within_slo(comparison.spec, comparison.trace, other))
    add("elastic-tts, maxSpotFraction 1", allspot[0], allspot[3])
    for name, entry in tuned.items():
        if entry.result is not None:
            add(f"{name}, tuned", entry.result.cost,
                within_slo(comparison.spec, comparison.trace, entry.result),
                f"u {entry.utilization:g}")
    if comparison.oracle is not None:
        variant = comparison.oracle.variant
        add("oracle@SLO", comparison.oracle.result.cost, comparison.oracle.slo_attainment,
            f"{variant.bucket} s, u {variant.utilization:g}")
    add("work floor", floor, 0.0)


def sensitivity(trace: Trace, spec: TTSServiceSpec) -> list[str]:
    """Seed 1 again with clients that read only Retry-After (whole seconds, at least 1),
    not the workers' retry-after-ms: what the hint is worth, to every policy."""
    comparison = compare(trace, spec, seed=SEEDS[0], both_dispatches=False,
                         worker=WorkerModel(retry_hint=False))
    lines = [f"-- sensitivity, seed {SEEDS[0]}: clients that read only Retry-After"]
    lines += ["   " + row for row in comparison_rows(comparison)]
    lines.append("   " + equal_slo_line(summaries(comparison)))
    return lines


def run_trace(label: str, trace: Trace, kind: str) -> tuple[list[str], float, list[str]]:
    spec = default_spec()
    table: dict[str, list[Row]] = {}
    notes: dict[str, list[str]] = {}
    lines = [f"== {label}: {trace.requests:,} requests over {trace.duration / 3600:.2f} h; "
             f"{'; '.join(trace.notes)}"]
    worst: dict[str, float] = {"slo": 1.0, "vs_oracle": 0.0, "vs_static": 1.0,
                               "vs_rival": -1e9}
    code_ok = True
    day_seconds = 0.0
    ratios = []
    for seed in SEEDS:
        comparison = compare(trace, spec, seed=seed)
        if seed == SEEDS[0]:
            day_seconds = comparison.elapsed
        lines.append(f"-- seed {seed}: dispatch {comparison.dispatch}; "
                     f"{len(comparison.spot.shortages)} shortage(s), "
                     f"{len(comparison.spot.waves)} wave(s); compared in "
                     f"{comparison.elapsed:.1f} s")
        lines += ["   " + row for row in comparison_rows(comparison)]
        lines.append("   " + equal_slo_line(summaries(comparison)))
        tuned = tune_baselines(comparison)
        lines += tuned_rows(comparison, tuned)
        # The same engine with the spot appetite of keda-spot and Karpenter: all spot.
        spotty = replace(spec, scaling=replace(spec.scaling, max_spot_fraction=1.0))
        allspot = simulate(trace, spotty, ElasticTTS(spotty), dispatch=comparison.dispatch,
                           spot=comparison.spot, seed=seed)
        share = within_slo(spec, trace, allspot)
        lines.append(f"   elastic-tts with maxSpotFraction 1 (the baselines' spot appetite): "
                     f"${allspot.cost:.2f}, {share:.2%} within SLO")
        collect(table, notes, comparison, tuned, (allspot.cost, None, None, share))
        figures = summaries(comparison)
        ours, static = figures["elastic-tts"], figures["static-gpu"]
        worst["slo"] = min(worst["slo"], ours.slo_attainment)
        if ours.cost_vs_oracle is not None:
            worst["vs_oracle"] = max(worst["vs_oracle"], ours.cost_vs_oracle)
            ratios.append(ours.cost_vs_oracle)
        else:
            worst["vs_oracle"] = float("inf")
        worst["vs_static"] = min(worst["vs_static"], 1 - ours.cost / static.cost)
        rival = cheapest_rival(comparison, tuned)
        if rival is not None:
            worst["vs_rival"] = max(worst["vs_rival"], ours.cost / rival[1] - 1)
            lines.append(f"   cheapest rival at elastic-tts's SLO: {rival[0]} ${rival[1]:.2f}")
        code_ok = code_ok and ours.cost < static.cost
    lines += sensitivity(trace, spec)
    lines.append(f"   targets, worst of seeds {', '.join(map(str, SEEDS))}:")

    def target(name: str, value: str, goal: str, met: bool) -> None:
        lines.append(f"     {name:<38} {value:>10}  target {goal:<18} "
                     f"{'met' if met else 'MISSED'}")

    if kind == "code":
        target("within SLO", f"{worst['slo']:.2%}", ">= 94 %", worst["slo"] >= 0.94)
        target("cost below static-gpu", f"{worst['vs_static']:.1%}", "cheaper", code_ok)
    else:
        target("within SLO", f"{worst['slo']:.2%}", ">= 99.5 %", worst["slo"] >= 0.995)
        shown = f"{worst['vs_oracle']:.2f}" if worst["vs_oracle"] != float("inf") else "-"
        target("cost / oracle@SLO", shown, "<= 1.10", worst["vs_oracle"] <= 1.10)
        if ratios:
            lines.append(f"     (median {statistics.median(ratios):.2f})")
        rival = worst["vs_rival"]
        target("dearer than the cheapest rival at its SLO",
               f"{rival:+.1%}" if rival > -1e9 else "none", "<= 0 (none cheaper)",
               rival <= 0)
        if kind == "day":
            target("cheaper than static-gpu", f"{worst['vs_static']:.1%}", ">= 60 %",
                   worst["vs_static"] >= 0.6)
    return lines, day_seconds, markdown(label.split(") ", 1)[-1], table, notes)


def main() -> int:
    started = time.perf_counter()
    day, conv, code = (builtin_day(),
                       scale(load_trace_file(TRACES / "azure_llm_2023_conv.csv"), 4.0),
                       load_trace_file(TRACES / "azure_llm_2023_code.csv"))
    out: list[str] = []
    rows = ["| trace | policy | cost (median / worst) | ÷ floor | ÷ oracle@SLO | "
            "within SLO (worst) |", "|---|---|---|---|---|---|"]
    lines, day_seconds, table = run_trace("(a) built-in day", day, "day")
    out += lines
    rows += table
    for label, trace, kind in (("(b) Azure conv x4 (1 h)", conv, "conv"),
                               ("(c) Azure code (1 h)", code, "code")):
        lines, _, table = run_trace(label, trace, kind)
        out += lines
        rows += table
    print("\n".join(out))
    print(f"\nThe README's table (seeds {', '.join(map(str, SEEDS))}; tuned rows: the "
          "baseline's targetUtilization searched to reach elastic-tts's SLO):\n")
    print("\n".join(rows))
    load = os.getloadavg()[0]
    verdict_speed = "met" if day_seconds <= SPEED_TARGET_SECONDS else "MISSED"
    print(f"\nspeed: the built-in day (24 h at 1 s steps), every policy and both bounds, one "
          f"seed: {day_seconds:.1f} s on {os.cpu_count()} cores (1-min load average "
          f"{load:.1f} at the end), target <= {SPEED_TARGET_SECONDS:.0f} s {verdict_speed}")
    print(f"whole benchmark: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
