"""Spot stage: when a spot pool goes into back-off, and when it is tried again.

A spot pool backs off when its replicas stay Pending past `fallbackAfterSeconds` (no
spot capacity in the zone) or when replicas are interrupted. While backed off it counts
as zero capacity and its `fallbackTo` pool covers what it would have carried. Each
failure in a row doubles the back-off (capped at 8x); a healthy tick (every asked-for
replica Ready, none pending) forgets the failures. After the back-off the optimiser puts
capacity on spot again, and make-before-break keeps on-demand until spot is Ready.
"""

from __future__ import annotations

from collections.abc import Mapping

from elastic_tts.policy.model import Backoff, Observation
from elastic_tts.policy.spec import TTSServiceSpec

MAX_BACKOFF_DOUBLINGS = 3


def update_backoff(
    spec: TTSServiceSpec, observation: Observation, backoff: Mapping[str, Backoff], now: float
) -> dict[str, Backoff]:
    updated: dict[str, Backoff] = {}
    for pool in spec.pools.values():
        if not pool.is_spot:
            continue
        state = observation.pool(pool.name)
        previous = backoff.get(pool.name)
        active = previous is not None and now < previous.until
        cause = None
        if state.interrupted > 0:
            cause = f"{state.interrupted} interrupted"
        elif state.pending > 0 and state.pending_seconds > pool.fallback_after_seconds:
            cause = f"pending {state.pending_seconds:.0f}s > {pool.fallback_after_seconds:.0f}s"
        if cause is not None and not active:
            failures = (previous.failures if previous else 0) + 1
            delay = pool.backoff_seconds * 2 ** min(failures - 1, MAX_BACKOFF_DOUBLINGS)
            updated[pool.name] = Backoff(now + delay, failures, cause)
        elif previous is not None:
            healthy = (
                not active
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
