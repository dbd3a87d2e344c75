"""Build status.conditions and decide which Events a tick's outcome deserves.

Conditions keep their lastTransitionTime unless their status flips, and Events fire only
on flips, as KEDA's controller does. Want/Got per tick:

    | condition          | was          | now   | event                 |
    |--------------------|--------------|-------|-----------------------|
    | MetricsAvailable   | True/absent  | False | MetricsUnavailable    |
    | SpotFallback       | False/absent | True  | SpotFallback          |
    | SpotFallback       | True         | False | SpotRecovered         |
    | (window)           | other/none   | name  | ScheduleWindowOpened  |
    | (replicas)         | n            | m > n | ScaledUp (m < n: ScaledDown) |
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elastic_tts.reconcile import reasons
from elastic_tts.reconcile.executor import ScaleChange
from elastic_tts.reconcile.observe import parse_time


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


def timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition_status(conditions: Iterable[Mapping[str, Any]] | None, kind: str) -> str | None:
    for cond in conditions or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def set_condition(conditions: Sequence[Mapping[str, Any]] | None, kind: str, status: bool,
                  reason: str, message: str, now: float) -> list[dict[str, Any]]:
    """A new conditions list with `kind` set; lastTransitionTime moves only on a flip."""
    text = "True" if status else "False"
    result: list[dict[str, Any]] = []
    found = False
    for cond in conditions or []:
        if cond.get("type") != kind:
            result.append(dict(cond))
            continue
        found = True
        since = cond.get("lastTransitionTime") if cond.get("status") == text else None
        result.append({"type": kind, "status": text, "reason": reason, "message": message,
                       "lastTransitionTime": since or timestamp(now)})
    if not found:
        result.append({"type": kind, "status": text, "reason": reason, "message": message,
                       "lastTransitionTime": timestamp(now)})
    order = {name: i for i, name in enumerate(reasons.CONDITION_TYPES)}
    return sorted(result, key=lambda c: order.get(str(c.get("type")), len(order)))


def flipped_to(previous: Iterable[Mapping[str, Any]] | None,
               current: Iterable[Mapping[str, Any]] | None, kind: str, status: bool) -> bool:
    """Whether condition `kind` is now `status` and was not before."""
    before = condition_status(previous, kind)
    want = "True" if status else "False"
    if condition_status(current, kind) != want or before == want:
        return False
    # A condition seen for the first time only "flips" into its unhealthy state.
    healthy_when_true = kind in (reasons.READY, reasons.METRICS_AVAILABLE)
    return before is not None or status != healthy_when_true


def scale_events(changes: Sequence[ScaleChange], reason: str) -> list[Event]:
    ups = [c for c in changes if c.after > c.before]
    downs = [c for c in changes if c.after < c.before]
    events = []
    if ups:
        text = ", ".join(f"{c.pool} {c.before}→{c.after}" for c in ups)
        events.append(Event("Normal", reasons.SCALED_UP, f"{text}: {reason}"))
    if downs:
        text = ", ".join(f"{c.pool} {c.before}→{c.after}" for c in downs)
        events.append(Event("Normal", reasons.SCALED_DOWN, f"{text}: {reason}"))
    return events


# What status shows that moves with the load tick by tick rather than with what the
# operator did: the figures the engine read, its rolling memory (rate samples, burst
# readings, the calibration's drift, the replica-time spot pools have run), how long a
# pod has waited. A tick that changes only these writes status every few ticks (`due`),
# not every tick: at 500 services a status patch per tick, and the watch event it sends
# back to every operator, was most of what the API server served (bench/bench_operator.py).
# Replicas, conditions, mode, window, weights, back-off and interruptions are written as
# they change. A decision's reason goes with its replicas: under a noisy load one that
# changes nothing says "within tolerance", "holding for" or neither from tick to tick, and
# what made it change anything else (an outage, spot, a window, a pause) is a condition or
# a field of its own.
_FIGURES_ONLY = ("load", "costPerHour")
_ROLLING_MEMORY = ("samples", "sizedFor", "plans", "bursts", "episodes", "utilisation",
                   "calibrateAfter", "spotExposure")
_POOL_FIGURES = ("pendingSeconds", "requestsPerSecond", "charactersPerSecond")


def _stored(value: Any) -> Any:
    """`value` as the API server keeps it after a merge patch: a null deletes its key."""
    if isinstance(value, Mapping):
        return {k: _stored(v) for k, v in value.items() if v is not None}
    return value


def _settled(status: Mapping[str, Any]) -> dict[str, Any]:
    """Status without what moves tick by tick, as stored (a new status holds nulls that
    the stored one, which it is compared with, has lost)."""
    view = {k: v for k, v in _stored(status).items() if k not in _FIGURES_ONLY}
    view["lastDecision"] = (view.get("lastDecision") or {}).get("replicas")
    view["pools"] = {name: {k: v for k, v in (pool or {}).items() if k not in _POOL_FIGURES}
                     for name, pool in (view.get("pools") or {}).items()}
    engine = dict(view.get("engine") or {})
    engine.pop("observation", None)
    engine["memory"] = {k: v for k, v in (engine.get("memory") or {}).items()
                        if k not in _ROLLING_MEMORY}
    view["engine"] = engine
    return view


def compared(status: Mapping[str, Any]) -> dict[str, Any]:
    """What `due` and `newest` read of a written status: its settled view and when it was
    written, without the rolling memory and figures. A caller that keeps its last write to
    compare with (the daemon's memo; the body may lag it) keeps this: the whole status
    would be one more copy of every service's memory, an hour of burst readings each."""
    view = _settled(status)
    view["lastDecision"] = {"replicas": view["lastDecision"],
                            "time": (status.get("lastDecision") or {}).get("time")}
    return view


def _written_at(status: Mapping[str, Any]) -> float | None:
    return parse_time((status.get("lastDecision") or {}).get("time"))


def newest(*statuses: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """Of several copies of one status, the one a later tick wrote."""
    return max((s for s in statuses if s), default={},
               key=lambda s: at if (at := _written_at(s)) is not None else float("-inf"))


def due(old: Mapping[str, Any], new: Mapping[str, Any], now: float,
        refresh_seconds: float) -> bool:
    """Whether a tick writes its status: when what it shows changed beyond the figures,
    or the written figures are `refresh_seconds` old (0: every tick)."""
    if refresh_seconds <= 0 or _settled(old) != _settled(new):
        return True
    at = _written_at(old)
    return at is None or now - at >= refresh_seconds
