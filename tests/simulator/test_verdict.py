"""The verdict line: the cheapest deployable policy at the SLO, and its monthly cost."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from elastic_tts.simulator.verdict import (
    HOURS_PER_MONTH,
    verdict,
    verdict_json,
    verdict_line,
)


def report(hours: float, **policies: tuple[float, float] | None) -> dict[str, Any]:
    return {"trace": {"seconds": hours * 3600},
            "policies": {name.replace("_", "-"): None if figures is None else
                         {"cost": figures[0], "slo_attainment": figures[1]}
                         for name, figures in policies.items()}}


def test_the_cheapest_policy_meeting_the_target_wins_and_the_oracle_never_does() -> None:
    found = verdict(report(24, elastic_tts=(60.0, 0.999), keda=(125.0, 0.9998),
                           cpu_only=(68.0, 0.98), oracle=(48.0, 0.995)), 0.99)
    assert (found.winner, found.runner_up) == ("elastic-tts", "keda")
    assert found.monthly["elastic-tts"] == pytest.approx(60.0 * HOURS_PER_MONTH / 24)
    assert "oracle" not in found.monthly
    line = verdict_line(found)
    assert line == ("verdict   elastic-tts is the cheapest policy that meets the SLO for 99 % "
                    "of requests: $1,825 a month at this traffic (730 h; the trace is 24 h), "
                    "52 % less than keda at $3,802")


def test_a_stricter_target_changes_the_winner() -> None:
    figures = report(1, elastic_tts=(1.0, 0.995), keda=(2.0, 0.9999))
    assert verdict(figures, 0.99).winner == "elastic-tts"
    assert verdict(figures, 0.999).winner == "keda"


def test_no_policy_meeting_the_target_is_said_with_the_closest() -> None:
    found = verdict(report(1, elastic_tts=(0.9, 0.75), hpa=(2.0, 0.74), cpu_only=None,
                           oracle=(0.3, 0.59)), 0.99)
    assert found.winner is None
    assert verdict_line(found) == (
        "verdict   no policy meets the SLO for 99 % of requests; the closest is elastic-tts "
        "(75.00 %, $657 a month): add capacity (maxReplicas, more pools) or relax "
        "latencySLOSeconds")
    assert verdict_json(found)["monthly_cost"] is None


def test_json_is_valid_whatever_the_figures() -> None:
    found = verdict(report(2, elastic_tts=(math.inf, 1.0), keda=(math.nan, 1.0),
                           hpa=(3.0, 1.0)), 0.99)
    assert found.winner == "hpa"  # non-finite figures are not compared
    text = json.dumps(verdict_json(found), allow_nan=False)
    assert json.loads(text)["monthly_cost"] == pytest.approx(3.0 * HOURS_PER_MONTH / 2)
