"""Schedule stage: windows across midnight and DST, overlap precedence, prewarm."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from elastic_tts.policy.cron import last_start, next_start
from elastic_tts.policy.schedule import Bounds, active_window, evaluate_schedule
from tests.unit.specs import build, three_pools

NY = "America/New_York"


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def spec_with(windows: list[dict[str, Any]], timezone: str = "UTC", **schedule: Any) -> Any:
    return build(three_pools(), schedule={"timezone": timezone, "windows": windows, **schedule})


def window_at(windows: list[dict[str, Any]], moment: str, timezone: str = "UTC") -> str | None:
    window = active_window(spec_with(windows, timezone), at(moment))
    return window.name if window else None


NIGHT = {"name": "night", "start": "0 22 * * *", "duration": "4h", "mode": "shutdown"}


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2026-11-23T21:59:00+00:00", None),
        ("2026-11-23T22:00:00+00:00", "night"),  # opens on the minute
        ("2026-11-23T23:59:59+00:00", "night"),
        ("2026-11-24T00:00:00+00:00", "night"),  # across midnight
        ("2026-11-24T01:59:59+00:00", "night"),
        ("2026-11-24T02:00:00+00:00", None),  # closes after exactly 4 h
    ],
)
def test_window_across_midnight(moment: str, expected: str | None) -> None:
    assert window_at([NIGHT], moment) == expected


@pytest.mark.parametrize(
    ("label", "expression", "moment", "expected"),
    [
        # 2026-03-08: New York springs forward, 02:00 EST -> 03:00 EDT. 02:30 does not
        # exist; the start fires once, at the instant 02:30 EST would have been.
        ("spring: skipped start fires shifted", "30 2 * * *", "2026-03-08T01:00:00-05:00",
         "2026-03-08T03:30:00-04:00"),
        ("spring: next day is normal again", "30 2 * * *", "2026-03-08T04:00:00-04:00",
         "2026-03-09T02:30:00-04:00"),
        # 2026-11-01: New York falls back, 02:00 EDT -> 01:00 EST. 01:30 happens twice;
        # the start fires once, at its first occurrence.
        ("fall: repeated start fires once", "30 1 * * *", "2026-11-01T00:00:00-04:00",
         "2026-11-01T01:30:00-04:00"),
        ("fall: not again in the repeated hour", "30 1 * * *", "2026-11-01T01:40:00-04:00",
         "2026-11-02T01:30:00-05:00"),
    ],
)
def test_next_start_across_dst(label: str, expression: str, moment: str, expected: str) -> None:
    assert next_start(expression, NY, at(moment)) == at(expected), label


def test_last_start_inside_the_repeated_hour_is_the_first_occurrence() -> None:
    # 01:10 EST is the second pass through 01:xx; the 01:30 start already happened at EDT.
    assert last_start("30 1 * * *", NY, at("2026-11-01T01:10:00-05:00")) == at(
        "2026-11-01T01:30:00-04:00"
    )


def test_durations_are_elapsed_time_on_a_spring_forward_day() -> None:
    early = {"name": "early", "start": "0 1 * * *", "duration": "3h"}
    # 01:00 EST + 3 elapsed hours = 05:00 EDT (wall clock shows 4 hours).
    assert window_at([early], "2026-03-08T04:59:00-04:00", NY) == "early"
    assert window_at([early], "2026-03-08T05:00:00-04:00", NY) is None


def test_durations_are_elapsed_time_on_a_fall_back_day() -> None:
    early = {"name": "early", "start": "30 1 * * *", "duration": "2h"}
    # Opens 01:30 EDT; 2 elapsed hours later the wall clock reads 02:30 EST.
    assert window_at([early], "2026-11-01T01:10:00-05:00", NY) == "early"
    assert window_at([early], "2026-11-01T02:29:00-05:00", NY) == "early"
    assert window_at([early], "2026-11-01T02:30:00-05:00", NY) is None


def test_timezone_is_applied() -> None:
    peak = {"name": "peak", "start": "0 9 * * *", "duration": "1h"}
    assert window_at([peak], "2026-11-23T01:30:00+00:00", "Asia/Shanghai") == "peak"
    assert window_at([peak], "2026-11-23T09:30:00+00:00", "Asia/Shanghai") is None


DAY = {"name": "day", "start": "0 8 * * *", "duration": "14h", "pools": {"gpu": {"minReplicas": 1}}}
LUNCH = {"name": "lunch", "start": "0 12 * * *", "duration": "1h",
         "pools": {"gpu": {"minReplicas": 3}}}


@pytest.mark.parametrize(
    ("label", "windows", "moment", "expected"),
    [
        ("inner window opened last", [DAY, LUNCH], "2026-11-23T12:30:00+00:00", "lunch"),
        ("list order does not matter", [LUNCH, DAY], "2026-11-23T12:30:00+00:00", "lunch"),
        ("outer window resumes", [DAY, LUNCH], "2026-11-23T13:30:00+00:00", "day"),
        ("shutdown opened last wins", [DAY, dict(NIGHT, start="0 21 * * *")],
         "2026-11-23T21:30:00+00:00", "night"),
        ("same start: later in list", [dict(LUNCH, name="a"), dict(LUNCH, name="b")],
         "2026-11-23T12:30:00+00:00", "b"),
    ],
)
def test_overlap_precedence(label: str, windows: list[dict[str, Any]], moment: str,
                            expected: str) -> None:
    assert window_at(windows, moment) == expected, label


@pytest.mark.parametrize(
    ("label", "window", "expected"),
    [
        ("no window", None, {"gpu": Bounds(0, 8), "gpu-spot": Bounds(0, 8), "cpu": Bounds(0, 6)}),
        ("shutdown", {"mode": "shutdown"},
         {"gpu": Bounds(0, 0), "gpu-spot": Bounds(0, 0), "cpu": Bounds(0, 0)}),
        ("cpu-only", {"mode": "cpu-only"},
         {"gpu": Bounds(0, 0), "gpu-spot": Bounds(0, 0), "cpu": Bounds(0, 6)}),
        ("floor", {"pools": {"gpu": {"minReplicas": 2}}},
         {"gpu": Bounds(2, 8), "gpu-spot": Bounds(0, 8), "cpu": Bounds(0, 6)}),
        ("ceiling", {"pools": {"cpu": {"maxReplicas": 2}}},
         {"gpu": Bounds(0, 8), "gpu-spot": Bounds(0, 8), "cpu": Bounds(0, 2)}),
        ("floor lifts the ceiling", {"pools": {"cpu": {"minReplicas": 9}}},
         {"gpu": Bounds(0, 8), "gpu-spot": Bounds(0, 8), "cpu": Bounds(9, 9)}),
    ],
)
def test_window_bounds(label: str, window: dict[str, Any] | None,
                       expected: dict[str, Bounds]) -> None:
    windows = [] if window is None else [{"name": "w", "start": "0 12 * * *",
                                           "duration": "1h", **window}]
    state = evaluate_schedule(spec_with(windows), at("2026-11-23T12:30:00+00:00"))
    assert dict(state.bounds) == expected, label


PEAK = {"name": "peak", "start": "0 9 * * *", "duration": "2h",
        "pools": {"gpu": {"minReplicas": 2}, "cpu": {"minReplicas": 1}}}


@pytest.mark.parametrize(
    ("moment", "gpu_floor", "cpu_floor"),
    [
        # GPU cold start 120 s + interval 15 s = 135 s of lookahead; CPU 30 + 15 = 45 s.
        ("2026-11-23T08:57:44+00:00", 0, 0),
        ("2026-11-23T08:57:46+00:00", 2, 0),  # GPU comes up one cold start ahead
        ("2026-11-23T08:59:16+00:00", 2, 1),  # CPU's shorter cold start, later
        ("2026-11-23T09:00:00+00:00", 2, 1),  # the window itself
    ],
)
def test_prewarm_raises_floors_one_cold_start_ahead(moment: str, gpu_floor: int,
                                                    cpu_floor: int) -> None:
    state = evaluate_schedule(spec_with([PEAK]), at(moment))
    assert (state.bounds["gpu"].low, state.bounds["cpu"].low) == (gpu_floor, cpu_floor)


def test_prewarm_can_be_switched_off() -> None:
    state = evaluate_schedule(spec_with([PEAK], prewarm=False), at("2026-11-23T08:59:00+00:00"))
    assert state.bounds["gpu"].low == 0 and not state.prewarm


def test_prewarm_lifts_a_closing_shutdown() -> None:
    night = {"name": "night", "start": "0 1 * * *", "duration": "8h", "mode": "shutdown"}
    state = evaluate_schedule(spec_with([night, PEAK]), at("2026-11-23T08:58:30+00:00"))
    assert state.window_name == "night"
    assert state.bounds["gpu"] == Bounds(2, 2)  # up before the shutdown ends
    assert state.prewarm == {"gpu": "peak"}


def test_a_shutdown_is_never_prewarmed() -> None:
    night = {"name": "night", "start": "0 9 * * *", "duration": "8h", "mode": "shutdown"}
    state = evaluate_schedule(spec_with([night]), at("2026-11-23T08:59:00+00:00"))
    assert state.bounds["gpu"] == Bounds(0, 8) and not state.prewarm
