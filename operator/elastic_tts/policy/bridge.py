"""Bridge stage: a pool kept out of the mix covers a burst while the pools that count start.

A pool too slow to share a dispatch (`kept_out`: the default CPU pool at a 5 s SLO) counts
for nothing in a mix, which is right while the mix has the capacity: it would miss the SLO
at the utilisation the faster pools run at. In a panic (a burst above twice the Ready
capacity) the mix does not have it: until the pools that count are Ready (a GPU replica's
cold start, 120 s by default) a crowd is refused and retried for minutes, and most of it
misses the SLO anyway. A request a slow replica serves at once still meets it (that pool
can serve a request within the SLO, only not after a queue), and a refused one comes back
to another replica; so while the panic lasts, when a kept-out pool starts faster than the
pools it waits for, the engine orders it for the shortfall, the demand the Ready replicas
that count do not cover, and sheds it when the panic passes (those pools are Ready).

Only a shortfall that has lasted the bridge's own cold start and a tick (ticks in a row
whose reading panics, or finds nothing Ready that counts) is bridged: a burst is expected
to go on about as long as it has lasted, and one of seconds (the Azure code trace has
many) is over before the bridge is Ready, which would then be paid for without serving,
or take a share of traffic that the faster pools serve within the SLO.

Capacity lost to spot interruptions within the wave window is not bridged: an interrupted
replica is replaced on its own pool (`spot`), and moves no capacity elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from elastic_tts.policy.model import PoolState
from elastic_tts.policy.schedule import Bounds
from elastic_tts.policy.spec import TTSServiceSpec


@dataclass(frozen=True)
class Bridge:
    replicas: Mapping[str, int]  # kept-out pool -> replicas asked for the shortfall
    shortfall: float  # demand units the Ready replicas that count do not cover
    waiting_for: tuple[str, ...]  # the growing pools it covers for
    cold_start: float  # theirs, the slowest


def bridge(spec: TTSServiceSpec, out: Mapping[str, str], raw: Mapping[str, float],
           counted: Mapping[str, float], states: Mapping[str, PoolState],
           targets: Mapping[str, int], bounds: Mapping[str, Bounds],
           shortfall: float, lasted: float = math.inf) -> Bridge | None:
    """What to order on the kept-out pools `out` for `shortfall` (demand units) while the
    pools that count (`counted` capacity per replica > 0) grow towards `targets`; `raw` is
    every pool's capacity per replica as it serves alone, and `lasted` how long the
    shortfall has lasted. The cheapest pool per unit of capacity among those that start
    faster than the slowest growing pool, once the shortfall has lasted their cold start
    and a tick, takes it all, within its ceiling. None when nothing is short, nothing
    grows, or no pool qualifies."""
    if shortfall <= 0 or not out:
        return None
    growing = tuple(n for n, c in counted.items()
                    if c > 0 and targets.get(n, 0) > states[n].ready)
    if not growing:
        return None
    wait = max(spec.pools[n].cold_start_seconds for n in growing)
    # A burst is expected to go on about as long as it has lasted (the longer one has
    # lasted, the longer it goes on); a bridge ordered now serves from one cold start on,
    # and the route's weights reach it one tick after it is Ready.
    tick = spec.scaling.interval_seconds
    faster = [n for n in out if raw.get(n, 0.0) > 0 and bounds[n].high > 0
              and spec.pools[n].cold_start_seconds < wait
              and lasted >= spec.pools[n].cold_start_seconds + tick]
    if not faster:
        return None
    pool = min(faster, key=lambda n: (spec.pools[n].cost_per_hour / raw[n], n))
    replicas = min(bounds[pool].high, math.ceil(shortfall / raw[pool] - 1e-9))
    return Bridge({pool: replicas}, shortfall, growing, wait)

