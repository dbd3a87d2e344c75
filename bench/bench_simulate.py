"""Cost at SLO: elastic-tts against static GPU, HPA, KEDA, CPU-only and the oracle.

Three traces with the default pools, side by side in one run:
  (a) the built-in diurnal day (24 h at 1 s steps; its wall time is the speed figure);
  (b) Azure LLM 2023 conversation, real timing, rate x4;
  (c) Azure LLM 2023 code, real timing (very bursty).
Targets for elastic-tts: cost <= 1.15 x oracle; >= 99.5 % within the SLO; >= 50 %
cheaper than keda at equal or better SLO attainment; >= 70 % cheaper than static-gpu.
Every figure is printed whether or not it meets its target. Traces are never tuned.

Trace data: Azure Public Dataset, AzureLLMInferenceDataset2023 (CC-BY 4.0), Patel et al.,
"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.
"""

from __future__ import annotations

import sys
from pathlib import Path

from elastic_tts.simulator.compare import compare
from elastic_tts.simulator.defaults import default_spec
from elastic_tts.simulator.report import summaries, table_rows
from elastic_tts.simulator.trace import Trace, builtin_day, scale
from elastic_tts.simulator.tracefile import load_trace_file

TRACES = Path(__file__).resolve().parents[1] / ".." / "shared" / "traces"
SPEED_TARGET_SECONDS = 20.0


def targets(figures: dict) -> list[tuple[str, float, str, bool]]:
    ours, oracle = figures["elastic-tts"], figures["oracle"]
    keda, static = figures["keda"], figures["static-gpu"]
    vs_keda = 1 - ours.cost / keda.cost
    vs_static = 1 - ours.cost / static.cost
    return [
        ("cost / oracle", ours.cost / oracle.cost, "<= 1.15", ours.cost <= 1.15 * oracle.cost),
        ("within SLO", ours.slo_attainment, ">= 99.5 %", ours.slo_attainment >= 0.995),
        ("cheaper than keda", vs_keda, ">= 50 %, SLO >= keda's",
         vs_keda >= 0.5 and ours.slo_attainment >= keda.slo_attainment),
        ("cheaper than static-gpu", vs_static, ">= 70 %", vs_static >= 0.7),
    ]


def run(label: str, trace: Trace) -> tuple[float, bool]:
    spec = default_spec()
    comparison = compare(trace, spec, seed=1)
    figures = summaries(comparison)
    print(f"== {label}: {trace.requests:,} requests over {trace.duration / 3600:.2f} h; "
          f"{'; '.join(trace.notes)}; dispatch {comparison.dispatch}")
    for row in table_rows(figures):
        print("   " + row)
    ok = True
    for name, value, goal, met in targets(figures):
        shown = f"{value:.1%}" if "%" in goal else f"{value:.2f}"
        print(f"   elastic-tts {name:<24} {shown:>8}  target {goal:<24} "
              f"{'met' if met else 'MISSED'}")
        ok = ok and met
    print(f"   simulated {len(comparison.results) + 1} runs in {comparison.elapsed:.1f} s\n")
    return comparison.elapsed, ok


def main() -> int:
    day_seconds, _ = run("(a) built-in day", builtin_day())
    run("(b) azure_llm_2023_conv.csv x4",
        scale(load_trace_file(TRACES / "azure_llm_2023_conv.csv"), 4.0))
    run("(c) azure_llm_2023_code.csv", load_trace_file(TRACES / "azure_llm_2023_code.csv"))
    verdict = "met" if day_seconds <= SPEED_TARGET_SECONDS else "MISSED"
    print(f"speed: 24 h at 1 s steps, all policies (+ elastic-tts under the other dispatch): "
          f"{day_seconds:.1f} s, target <= {SPEED_TARGET_SECONDS:.0f} s {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
