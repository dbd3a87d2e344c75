"""Spot stage: when a spot pool goes into back-off, and when it is tried again.

An interrupted spot replica is replaced on spot: its Deployment asks for a new pod at
once, and the engine keeps the pool's target, so one interruption moves no capacity
elsewhere. A spot pool backs off only when

- its replicas stay Pending past `fallbackAfterSeconds` (no spot capacity), or
- an interruption wave hits it: more replicas interrupted within `WAVE_WINDOW_SECONDS`
  than the pool's routine rate would give but once in `1 / WAVE_SIGNIFICANCE` windows
  (and at least `WAVE_MIN`). Single reclaims are routine; many within minutes mean the
  provider is taking the capacity back, and replacements would be reclaimed or stay
  Pending too.

The routine rate is what the engine has observed on the pool (`update_exposure`): its
interruptions outside waves over its replica-time, forgotten over `RATE_MEMORY_SECONDS`,
taken at its upper confidence bound, so that little experience means a high rate and a
high bar; the bar is never above a quarter of the pool (`WAVE_SHARE`), the rule before
any experience. A pool that has seen five reclaims in 100 replica-hours (about the
simulator's 0.05 per replica-hour) calls seven of 128 within five minutes a wave, where
the quarter alone waits for 32: on the Azure conversation trace (x4, seed 3, all spot) that
is the first tick of a wave that takes half the pool over three minutes, not the eighth,
and every replica lost meanwhile is a cold start of missing capacity.

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

from elastic_tts.policy.model import Backoff, Observation, PoolState
from elastic_tts.policy.spec import Pool, TTSServiceSpec

WAVE_WINDOW_SECONDS = 300.0
WAVE_MIN = 2  # one reclaim is never a wave: it is replaced on spot
# The bar while the routine rate is unknown: a quarter of the pool within the window.
WAVE_SHARE = 0.25
# A wave is a count the routine rate gives in at most one window in a thousand: with a
# window every five minutes that is one false wave in about three days per pool, and a
# false wave costs little (the survivors stay, the lost replicas are covered on demand
# for one back-off), while a wave seen late costs a cold start of missing capacity for
# every replica it takes meanwhile.
WAVE_SIGNIFICANCE = 1e-3
# The routine rate at its one-sided 95 % upper confidence bound (z for 0.95).
RATE_CONFIDENCE_Z = 1.645
# Experience older than about a day fades: the providers' own interruption figures move
# with demand for the instance type over days (AWS's Spot advisor reports a trailing
# month), and a day still holds enough replica-hours for a tight bound.
RATE_MEMORY_SECONDS = 86400.0
# A gap between ticks longer than this (an operator restart) adds no replica-time: what
# happened on the pool meanwhile was not seen.
_MAX_GAP_SECONDS = 300.0

Interruptions = Mapping[str, tuple[tuple[float, int], ...]]
# spot pool -> (time, replica-seconds exposed, routine interruptions), both decayed
Exposure = Mapping[str, tuple[float, float, float]]


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


def rate_bound(entry: tuple[float, float, float] | None) -> float | None:
    """The routine interruption rate per replica-second at its upper confidence bound
    (Wilson-Hilferty's approximation of the exact Poisson bound, the Gamma(n + 1)
    quantile over the exposure), or None before any replica-time is seen."""
    if entry is None or entry[1] <= 0:
        return None
    shape = entry[2] + 1.0
    root = 1.0 - 1.0 / (9.0 * shape) + RATE_CONFIDENCE_Z / (3.0 * math.sqrt(shape))
    return shape * root ** 3 / entry[1]


def poisson_threshold(mean: float, at_most: int) -> int:
    """The smallest count k with P(N >= k) <= WAVE_SIGNIFICANCE for N ~ Poisson(mean), or
    `at_most` where that is smaller. The sum stops there: the caller needs no more, and
    for a large mean (a rate bound from seconds of experience) exp(-mean) underflows to 0
    and the sum would never reach the significance."""
    term = cdf = math.exp(-mean)
    k = 0
    while 1.0 - cdf > WAVE_SIGNIFICANCE and k + 1 < at_most:
        k += 1
        term *= mean / k
        cdf += term
    return min(k + 1, at_most)


def wave_threshold(current: int, rate: float | None = None) -> int:
    """How many interruptions within the window make a wave, for a pool that asks for
    `current` replicas (its replacements included) with a routine rate `rate` per
    replica-second (None: unknown)."""
    share = max(WAVE_MIN, math.ceil(WAVE_SHARE * max(current, 1)))
    if rate is None:
        return share
    mean = rate * max(current, 1) * WAVE_WINDOW_SECONDS
    return max(WAVE_MIN, poisson_threshold(mean, share))


def is_wave(interrupted: int, current: int, rate: float | None = None) -> bool:
    """`interrupted` replicas lost within the window, from a pool that asks for `current`
    (its replacements included), against the routine rate `rate` (`wave_threshold`)."""
    return interrupted >= wave_threshold(current, rate)


def _spot_states(spec: TTSServiceSpec, observation: Observation) -> list[tuple[Pool, PoolState]]:
    return [(pool, observation.pool(pool.name)) for pool in spec.pools.values() if pool.is_spot]


def _wave(state: PoolState, events: tuple[tuple[float, int], ...],
          seen: tuple[float, float, float] | None) -> int | None:
    """How many were lost within the window, when this tick's interruptions make a wave."""
    lost = sum(n for _, n in events)
    if state.interrupted > 0 and is_wave(lost, state.current, rate_bound(seen)):
        return lost
    return None


def update_exposure(spec: TTSServiceSpec, observation: Observation, exposure: Exposure,
                    backoff: Mapping[str, Backoff], now: float,
                    interruptions: Interruptions | None = None
                    ) -> dict[str, tuple[float, float, float]]:
    """Each spot pool's replica-time since the last tick (the replicas that can be
    reclaimed: asked for and not Pending) and its routine interruptions, both decayed over
    `RATE_MEMORY_SECONDS`. Interruptions of a tick that makes a wave (whatever back-off the
    pool is in already), or that fall within a wave's back-off, are the wave's, not
    routine: counted as routine they would raise the bar for the next wave."""
    updated: dict[str, tuple[float, float, float]] = {}
    recent = interruptions or {}
    for pool, state in _spot_states(spec, observation):
        seen = exposure.get(pool.name)
        since, seconds, events = seen if seen is not None else (now, 0.0, 0.0)
        gap = max(now - since, 0.0)
        decay = math.exp(-gap / RATE_MEMORY_SECONDS)
        exposed = max(state.current - state.pending, 0) * min(gap, _MAX_GAP_SECONDS)
        entry = backoff.get(pool.name)
        wave = ((entry is not None and entry.cause.startswith("wave") and now < entry.until)
                or _wave(state, recent.get(pool.name, ()), seen) is not None)
        routine = 0 if wave else state.interrupted
        updated[pool.name] = (now, seconds * decay + exposed, events * decay + routine)
    return updated


def update_backoff(
    spec: TTSServiceSpec, observation: Observation, backoff: Mapping[str, Backoff], now: float,
    interruptions: Interruptions | None = None, exposure: Exposure | None = None,
) -> dict[str, Backoff]:
    updated: dict[str, Backoff] = {}
    recent = interruptions or {}
    seen = exposure or {}
    for pool, state in _spot_states(spec, observation):
        previous = backoff.get(pool.name)
        active = previous is not None and now < previous.until
        cause = None
        lost = _wave(state, recent.get(pool.name, ()), seen.get(pool.name))
        if lost is not None:
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
