"""Spot stage: when a spot pool goes into back-off, and when it is tried again.

An interrupted spot replica is replaced on spot: its Deployment asks for a new pod at
once, and the engine keeps the pool's target, so one interruption moves no capacity
elsewhere. A spot pool backs off only when

- its replicas stay Pending past `fallbackAfterSeconds` (no spot capacity), or
- an interruption wave hits it: at least `WAVE_MIN` replicas, and at least `WAVE_SHARE`
  of the pool, interrupted within `WAVE_WINDOW_SECONDS`. Single reclaims are routine
  (a few per replica-month); several within minutes mean the provider is taking the
  capacity back, and replacements would be reclaimed or stay Pending too.

While backed off the pool counts as zero capacity and the optimiser covers the load from
every other pool, the cheapest first (CPU may beat on-demand GPU per unit of capacity);
`fallbackTo` names the pool the user relies on to be able to cover it. After the back-off
the optimiser puts capacity on spot again, and make-before-break keeps the other pools
until spot is Ready.

Every back-off lasts `backoffSeconds`, however many failed in a row. A retry costs little:
the cover is held until spot is Ready, so a retry that stays Pending leaves the load where
it was, while each doubling would keep the load on on-demand capacity (2.5x the price by
default) for that much longer after spot is back. (On the built-in day, seeds 1-3, a
back-off that doubles per failure in a row cost $0.8 a day more on two seeds. It used to
double only for a pool that had lost every spot replica: with survivors Ready, the tick
before a retry looked healthy and forgot the failures.) The failures in a row are still
counted (the status shows them), and forgotten only once a retry has proven spot: a
cold start after the back-off, every replica asked for Ready, none Pending.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from elastic_tts.policy.model import Backoff, Observation
from elastic_tts.policy.spec import TTSServiceSpec

WAVE_WINDOW_SECONDS = 300.0
WAVE_MIN = 2
WAVE_SHARE = 0.25

Interruptions = Mapping[str, tuple[tuple[float, int], ...]]


def recent_interruptions(spec: TTSServiceSpec, observation: Observation,
                         history: Interruptions, now: float
                         ) -> dict[str, tuple[tuple[float, int], ...]]:
    """Interruptions per spot pool within the wave window, this tick's included."""
    recent: dict[str, tuple[tuple[float, int], ...]] = {}
    for pool in spec.pools.values():
        if not pool.is_spot:
            continue
        events = tuple(e for e in history.get(pool.name, ())
                       if now - WAVE_WINDOW_SECONDS < e[0] < now)
        count = observation.pool(pool.name).interrupted
        if count > 0:
            events = (*events, (now, count))
        if events:
            recent[pool.name] = events
    return recent


def is_wave(interrupted: int, current: int) -> bool:
    """`interrupted` replicas lost within the window, from a pool that asks for `current`
    (its replacements included)."""
    return interrupted >= max(WAVE_MIN, math.ceil(WAVE_SHARE * max(current, 1)))


def update_backoff(
    spec: TTSServiceSpec, observation: Observation, backoff: Mapping[str, Backoff], now: float,
    interruptions: Interruptions | None = None,
) -> dict[str, Backoff]:
    updated: dict[str, Backoff] = {}
    recent = interruptions or {}
    for pool in spec.pools.values():
        if not pool.is_spot:
            continue
        state = observation.pool(pool.name)
        previous = backoff.get(pool.name)
        active = previous is not None and now < previous.until
        cause = None
        lost = sum(n for _, n in recent.get(pool.name, ()))
        if state.interrupted > 0 and is_wave(lost, state.current):
            cause = f"wave: {lost} interrupted within {WAVE_WINDOW_SECONDS:.0f}s"
        elif state.pending > 0 and state.pending_seconds > pool.fallback_after_seconds:
            cause = f"pending {state.pending_seconds:.0f}s > {pool.fallback_after_seconds:.0f}s"
        if cause is not None and not active:
            failures = (previous.failures if previous else 0) + 1
            updated[pool.name] = Backoff(now + pool.backoff_seconds, failures, cause)
        elif previous is not None:
            # Proven by a retry: a cold start since the back-off ended (before it, a pool
            # with survivors Ready looks healthy whether or not spot is back).
            healthy = (
                now >= previous.until + pool.cold_start_seconds
                and state.current > 0
                and state.ready >= state.current
                and state.pending == 0
            )
            if not healthy:
                updated[pool.name] = previous
    return updated


def in_backoff(backoff: Mapping[str, Backoff], pool: str, now: float) -> bool:
    entry = backoff.get(pool)
    return entry is not None and now < entry.until
