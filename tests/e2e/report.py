"""The e2e report: one session-wide collector that every scenario adds to, written to
out/e2e-report.txt (and .json) and printed at the end of the pytest run.

Figures are only ever added from what a scenario measured; a scenario that did not run
adds nothing, and the report says which scenarios contributed. The JSON keeps every
request the client sent, as [scheduled time (POSIX), characters, final status,
latency from the first attempt to the final answer (s), attempts, lag of the first
attempt behind the schedule (s)], so the client-side latency can be compared with the
simulator's model of the same client.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.loadgen import LoadStats, percentile
from tests.e2e.observer import ScaleAction

OUT = Path(__file__).resolve().parents[2] / "out"


@dataclass
class FaultRecord:
    scenario: str
    fault: str
    outcome: str


@dataclass
class ScenarioFigures:
    name: str
    sent: int = 0
    answers: dict[str, int] = field(default_factory=dict)  # every attempt, by status
    final: dict[str, int] = field(default_factory=dict)  # each request's last answer
    lost: int = 0
    p50: float = math.nan
    p95: float = math.nan
    slo_worker: float | None = None  # from the workers' histogram in Prometheus
    scale_actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # [at, chars, status, latency, attempts, delay] per request (see the module docstring)
    requests: list[list[Any]] = field(default_factory=list)
    # measured against simulated client latency, with the simulator's measured inputs
    # (tests/e2e/fidelity.py, `Agreement.record`)
    fidelity: dict[str, Any] = field(default_factory=dict)


@dataclass
class E2EReport:
    scenarios: list[ScenarioFigures] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    bad_input: dict[str, Any] = field(default_factory=dict)

    def scenario(self, name: str) -> ScenarioFigures:
        figures = ScenarioFigures(name)
        self.scenarios.append(figures)
        return figures

    def add_load(self, figures: ScenarioFigures, stats: LoadStats) -> None:
        figures.sent += stats.sent
        figures.answers = dict(Counter(figures.answers) + stats.answers)
        figures.final = dict(Counter(figures.final) + Counter(
            str(r.status) for r in stats.results))
        figures.lost += len(stats.lost)
        figures.requests += [[round(r.at, 3), r.chars, r.status, round(r.latency, 4),
                              r.attempts, round(r.delay, 4)] for r in stats.results]
        latencies = [r[3] for r in figures.requests if r[2] == 200]
        figures.p50, figures.p95 = percentile(latencies, 50), percentile(latencies, 95)

    def add_scaling(self, figures: ScenarioFigures, actions: list[ScaleAction],
                    origin: float) -> None:
        figures.scale_actions += [f"t+{a.at - origin:5.1f}s {a.pool} {a.before}->{a.after}"
                                  for a in actions]

    def fault(self, scenario: str, fault: str, outcome: str) -> None:
        self.faults.append(FaultRecord(scenario, fault, outcome))

    # Rendering.
    def render(self) -> str:
        if not self.scenarios and not self.faults and not self.bad_input:
            return "e2e report: no e2e scenario ran"
        lines = ["e2e report (elastic-tts, the whole loop)", ""]
        total_sent = sum(s.sent for s in self.scenarios)
        total_lost = sum(s.lost for s in self.scenarios)
        answers: Counter[str] = Counter()
        for s in self.scenarios:
            answers.update(s.answers)
        errors = {k: v for k, v in sorted(answers.items()) if k != "200"}
        lines += [f"requests sent:   {total_sent}",
                  f"answers (every attempt, non-200): {errors or 'none'}",
                  f"lost (no 200 in the end):         {total_lost}", ""]
        lines.append(f"{'scenario':38} {'sent':>6} {'lost':>4} {'p50 s':>6} {'p95 s':>6} "
                     f"{'SLO (workers)':>13}")
        for s in self.scenarios:
            slo = f"{s.slo_worker:.1%}" if s.slo_worker is not None else "-"
            lines.append(f"{s.name:38} {s.sent:>6} {s.lost:>4} {_num(s.p50):>6} "
                         f"{_num(s.p95):>6} {slo:>13}")
        lines.append("")
        for s in self.scenarios:
            if s.scale_actions or s.notes:
                lines.append(f"[{s.name}]")
                lines += [f"  note: {n}" for n in s.notes]
                if s.scale_actions:
                    lines.append(f"  scale actions ({len(s.scale_actions)}):")
                    lines += [f"    {a}" for a in s.scale_actions]
        if self.faults:
            lines += ["", "faults injected:"]
            lines += [f"  [{f.scenario}] {f.fault}: {f.outcome}" for f in self.faults]
        if self.bad_input:
            lines += ["", "bad input:"]
            lines += [f"  {k}: {v}" for k, v in self.bad_input.items()]
        return "\n".join(lines)

    def write(self, directory: Path = OUT) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        text = directory / "e2e-report.txt"
        text.write_text(self.render() + "\n")
        (directory / "e2e-report.json").write_text(json.dumps(
            {"scenarios": [asdict(s) for s in self.scenarios],
             "faults": [asdict(f) for f in self.faults], "bad_input": self.bad_input},
            indent=2, default=str))
        return text


def _num(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"


REPORT = E2EReport()
