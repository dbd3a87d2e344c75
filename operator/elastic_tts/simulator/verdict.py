"""Simulate's answer to "so what": the cheapest policy that meets the SLO, and what it
costs a month at this traffic.

It reads the report as `--json` prints it (each policy's cost and SLO attainment, the
trace's length), so it depends on nothing else of the simulator. The oracle is a bound,
not something one can deploy, so it never wins. A month is 730 hours (365 × 24 / 12, as
cloud price lists bill one), and the trace's cost is scaled to it as if its traffic
repeated all month.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HOURS_PER_MONTH = 730.0
DEFAULT_SLO_TARGET = 0.99
BOUND = "oracle"  # hindsight and instant scaling: the lower bound, not a policy


@dataclass(frozen=True)
class Verdict:
    slo_target: float  # the share of requests that must be within the latency SLO
    hours: float  # the trace's length
    winner: str | None  # the cheapest policy meeting the target; None when none does
    monthly: dict[str, float]  # policy -> dollars a month at this traffic
    attainment: dict[str, float]  # policy -> share within the SLO

    @property
    def runner_up(self) -> str | None:
        """The cheapest other policy meeting the target."""
        others = [n for n in self._meeting() if n != self.winner]
        return others[0] if others else None

    @property
    def closest(self) -> str | None:
        """Without a winner: the policy nearest the target (the cheaper one on a tie)."""
        if not self.attainment:
            return None
        return min(self.attainment, key=lambda n: (-self.attainment[n], self.monthly[n]))

    def _meeting(self) -> list[str]:
        meeting = [n for n, share in self.attainment.items() if share >= self.slo_target]
        return sorted(meeting, key=lambda n: (self.monthly[n], -self.attainment[n]))


def verdict(report: Mapping[str, Any], slo_target: float = DEFAULT_SLO_TARGET) -> Verdict:
    """The verdict on a report shaped as `to_json` makes it."""
    hours = float(report["trace"]["seconds"]) / 3600.0
    monthly: dict[str, float] = {}
    attainment: dict[str, float] = {}
    for name, figures in report["policies"].items():
        if name == BOUND or figures is None or hours <= 0:
            continue
        cost, share = figures.get("cost"), figures.get("slo_attainment")
        if not _finite(cost) or not _finite(share):
            continue
        monthly[name] = float(cost) * HOURS_PER_MONTH / hours
        attainment[name] = float(share)
    found = Verdict(slo_target, hours, None, monthly, attainment)
    meeting = found._meeting()
    return Verdict(slo_target, hours, meeting[0] if meeting else None, monthly, attainment)


def verdict_line(found: Verdict) -> str:
    slo = f"the SLO for {found.slo_target * 100:g} % of requests"
    if found.winner is None:
        closest = found.closest
        if closest is None:
            return "verdict   no policy could be simulated on this trace"
        return (f"verdict   no policy meets {slo}; the closest is {closest} "
                f"({found.attainment[closest] * 100:.2f} %, {_dollars(found.monthly[closest])} a "
                "month): add capacity (maxReplicas, more pools) or relax latencySLOSeconds")
    line = (f"verdict   {found.winner} is the cheapest policy that meets {slo}: "
            f"{_dollars(found.monthly[found.winner])} a month at this traffic "
            f"({HOURS_PER_MONTH:g} h; the trace is {found.hours:.3g} h)")
    runner_up = found.runner_up
    if runner_up is not None:
        saving = 1 - found.monthly[found.winner] / found.monthly[runner_up] \
            if found.monthly[runner_up] > 0 else 0.0
        line += (f", {saving * 100:.0f} % less than {runner_up} at "
                 f"{_dollars(found.monthly[runner_up])}")
    return line


def verdict_json(found: Verdict) -> dict[str, Any]:
    return {
        "slo_target": found.slo_target,
        "policy": found.winner,
        "monthly_cost": None if found.winner is None
        else round(found.monthly[found.winner], 2),
        "runner_up": found.runner_up,
        "hours_per_month": HOURS_PER_MONTH,
        "monthly_costs": {name: round(cost, 2) for name, cost in found.monthly.items()},
    }


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _dollars(value: float) -> str:
    return f"${value:,.0f}" if value >= 100 else f"${value:,.2f}"
