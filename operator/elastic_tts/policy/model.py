"""Values that flow into and out of `decide`: Observation, Memory, Decision.

Memory is what the engine carries between ticks. It round-trips through plain JSON
(`to_dict` / `from_dict`) so the operator can keep it on the TTSService object and a
restarted operator resumes exactly where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["peak", "off-peak", "shutdown", "cpu-only", "fallback", "paused"]


@dataclass(frozen=True)
class PoolState:
    """What the cluster says about one pool right now."""

    current: int = 0  # replicas the Deployment asks for now
    ready: int = 0  # replicas serving
    pending: int = 0  # replicas asked for but not scheduled or not started
    pending_seconds: float = 0.0  # age of the oldest pending replica
    interrupted: int = 0  # replicas lost to a spot interruption since the last tick


@dataclass(frozen=True)
class Observation:
    """Load in the spec's metric unit (characters/s or requests/s), and the pools.

    ``short_rate`` is the ~1 minute rate, ``long_rate`` the ~5 minute rate. Either may be
    None when Prometheus has no data; ``metrics_available`` False means none came back.
    The worker's admission signals (ADMISSION.md) come as the backlog gauge
    (`tts_backlog_characters`) and the share of offered requests refused
    (`tts_refusals_total` over `tts_offered_requests_total`).
    """

    short_rate: float | None
    long_rate: float | None
    pools: Mapping[str, PoolState] = field(default_factory=dict)
    metrics_available: bool = True
    # The signals below are optional: None means "not observed", and the stage that
    # uses one is skipped. Units: characters whatever the spec's metric.
    burst_rate: float | None = None  # the newest ~15 s rate, in the spec's metric unit
    requests_rate: float | None = None  # requests/s over the long window (text length)
    backlog_characters: float | None = None  # admitted and not yet synthesised (gauge)
    refused_share: float | None = None  # refusals / offered requests (long window)

    def pool(self, name: str) -> PoolState:
        return self.pools.get(name, PoolState())


@dataclass(frozen=True)
class Backoff:
    until: float  # POSIX seconds when spot is tried again
    failures: int  # consecutive failed attempts (each backs off for backoffSeconds)
    cause: str


@dataclass(frozen=True)
class Transition:
    """Pools held at their old size until the new capacity is Ready (make before break)."""

    held: Mapping[str, int]
    deadline: float
    growing: tuple[str, ...] = ()  # the pools whose new replicas it waits for


@dataclass(frozen=True)
class Memory:
    samples: tuple[tuple[float, float], ...] = ()  # (time, demand) within the windows
    sized_for: float = 0.0  # the demand the current targets were chosen for
    targets: Mapping[str, int] = field(default_factory=dict)  # last decision's targets
    backoff: Mapping[str, Backoff] = field(default_factory=dict)
    transition: Transition | None = None
    # (time, plan) per tick within the longest per-pool scale-down window
    plans: tuple[tuple[float, Mapping[str, int]], ...] = ()
    bursts: tuple[tuple[float, float], ...] = ()  # (time, burst ratio) over the last hour
    # (time of its newest reading, highest and second highest ~15 s rate) per burst
    # episode over the last hour
    episodes: tuple[tuple[float, float, float], ...] = ()
    utilisation: float | None = None  # the utilisation sized for, following refusals
    calibrate_after: float | None = None  # no calibration until the window is steady again
    panic_until: float | None = None
    short_since: float | None = None  # when the Ready capacity fell short of a burst (bridge)
    # spot pool -> (time, replicas interrupted) within the wave window
    interruptions: Mapping[str, tuple[tuple[float, int], ...]] = field(default_factory=dict)
    # spot pool -> (time, replica-seconds, routine interruptions), decayed: the routine
    # interruption rate the engine has observed (`policy.spot.update_exposure`)
    spot_exposure: Mapping[str, tuple[float, float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": [[round(t, 3), round(d, 6)] for t, d in self.samples],
            "sizedFor": self.sized_for,
            "targets": dict(self.targets),
            "backoff": {
                name: {"until": b.until, "failures": b.failures, "cause": b.cause}
                for name, b in self.backoff.items()
            },
            "transition": None
            if self.transition is None
            else {"held": dict(self.transition.held), "deadline": self.transition.deadline,
                  "growing": list(self.transition.growing)},
            "plans": [[round(t, 3), dict(p)] for t, p in self.plans],
            "bursts": [[round(t, 3), round(b, 4)] for t, b in self.bursts],
            "episodes": [[round(t, 3), round(top, 3), round(second, 3)]
                         for t, top, second in self.episodes],
            "utilisation": self.utilisation,
            "calibrateAfter": self.calibrate_after,
            "panicUntil": self.panic_until,
            "shortSince": self.short_since,
            "interruptions": {name: [[round(t, 3), n] for t, n in events]
                              for name, events in self.interruptions.items()},
            "spotExposure": {name: [round(t, 3), round(seconds, 3), round(events, 6)]
                             for name, (t, seconds, events) in self.spot_exposure.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Memory:
        """Rebuild memory; anything unreadable yields an empty memory rather than a crash,
        because an operator must still be able to act on a hand-edited object."""
        if not data:
            return cls()
        try:
            transition = data.get("transition")
            return cls(
                samples=tuple((float(t), float(d)) for t, d in data.get("samples", [])),
                sized_for=float(data.get("sizedFor", 0.0)),
                targets={str(k): int(v) for k, v in data.get("targets", {}).items()},
                backoff={
                    str(name): Backoff(float(b["until"]), int(b["failures"]), str(b["cause"]))
                    for name, b in data.get("backoff", {}).items()
                },
                transition=None
                if not transition
                else Transition(
                    held={str(k): int(v) for k, v in transition["held"].items()},
                    deadline=float(transition["deadline"]),
                    growing=tuple(str(n) for n in transition.get("growing", ())),
                ),
                plans=tuple((float(t), {str(k): int(v) for k, v in p.items()})
                            for t, p in data.get("plans", [])),
                bursts=tuple((float(t), float(b)) for t, b in data.get("bursts", [])),
                episodes=tuple((float(t), float(top), float(second))
                               for t, top, second in data.get("episodes", [])),
                utilisation=_optional_float(data.get("utilisation")),
                calibrate_after=_optional_float(data.get("calibrateAfter")),
                panic_until=_optional_float(data.get("panicUntil")),
                short_since=_optional_float(data.get("shortSince")),
                interruptions={str(name): tuple((float(t), int(n)) for t, n in events)
                               for name, events in data.get("interruptions", {}).items()},
                spot_exposure={str(name): (float(t), float(seconds), float(events))
                               for name, (t, seconds, events)
                               in data.get("spotExposure", {}).items()},
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return cls()


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Decision:
    replicas: Mapping[str, int]
    mode: Mode
    cost_per_hour: float
    reason: str
    demand: float | None  # capacity units wanted (load / target utilisation), None if unknown
    capacity: float  # capacity of the targets, same unit as demand
    window: str | None  # active schedule window
    metrics_held: bool  # True when metrics were missing and replicas were held
    spot_backoff: Mapping[str, float]  # pool -> POSIX time spot is retried
    memory: Memory

    def changes(self, current: Mapping[str, int]) -> dict[str, tuple[int, int]]:
        return {
            name: (current.get(name, 0), target)
            for name, target in self.replicas.items()
            if current.get(name, 0) != target
        }
