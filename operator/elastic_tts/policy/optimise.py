"""Optimise stage: the exact cost-minimal integer replica mix.

    minimise   sum(n_p * cost_p)
    subject to sum(n_p * cap_p) >= demand                    (capacity covers demand)
               low_p <= n_p <= high_p                          (floors and ceilings)
               sum(spot n_p * cap_p) <= f * sum(n_p * cap_p)    (maxSpotFraction)

cap_p is zero for a pool that cannot meet the SLO or whose spot is in back-off: it can
still be held at its floor, but it never counts towards capacity.

When even the ceilings cannot cover the demand, the plan covers as much as possible and
then is as cheap as possible. If the spot fraction cannot be met at all (spot floors
above what the on-demand ceilings allow), it is dropped rather than returning nothing.

Method: depth-first branch and bound over the pools, cheapest capacity first. A branch is
cut when its optimistic coverage is below the best found, or when its cost lower bound
(the LP relaxation of the rest) cannot beat the best. Replica counts beyond what covers
the demand on their own are never optimal, which bounds every loop. `brute_force`
enumerates everything and exists to check this against.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

_EPS = 1e-9


@dataclass(frozen=True)
class PoolOption:
    name: str
    capacity: float  # per replica, in demand units; 0 = does not count
    cost: float  # per replica-hour
    low: int
    high: int
    spot: bool


@dataclass(frozen=True)
class Plan:
    counts: dict[str, int]
    cost: float
    capacity: float
    spot_capacity: float

    def covers(self, demand: float) -> bool:
        return self.capacity + _EPS >= demand


def _key(cost: float, capacity: float, demand: float) -> tuple[float, float]:
    # Cover as much of the demand as possible first, then pay as little as possible.
    return (-min(capacity, demand), cost)


def _better(a: tuple[float, float], b: tuple[float, float]) -> bool:
    if a[0] < b[0] - _EPS:
        return True
    if a[0] > b[0] + _EPS:
        return False
    return a[1] < b[1] - _EPS


def _spot_ok(spot: float, total: float, fraction: float) -> bool:
    return spot <= fraction * total + _EPS


def evaluate(options: Sequence[PoolOption], counts: dict[str, int]) -> Plan:
    cost = capacity = spot = 0.0
    for option in options:
        n = counts[option.name]
        cost += n * option.cost
        capacity += n * option.capacity
        spot += n * option.capacity if option.spot else 0.0
    return Plan(dict(counts), cost, capacity, spot)


def optimise(options: Sequence[PoolOption], demand: float, max_spot_fraction: float) -> Plan:
    plan = _search(options, max(demand, 0.0), max_spot_fraction)
    if plan is None:  # the spot floors make the fraction impossible: ignore it
        plan = _search(options, max(demand, 0.0), 1.0)
    assert plan is not None  # with fraction 1.0 all-floors is always admissible
    return plan


def _search(options: Sequence[PoolOption], demand: float, fraction: float) -> Plan | None:
    fixed = [o for o in options if o.capacity <= 0 or o.low >= o.high]
    free = sorted(
        (o for o in options if o.capacity > 0 and o.low < o.high),
        key=lambda o: (o.cost / o.capacity, not o.spot, o.name),
    )
    base_cost = sum(o.low * o.cost for o in fixed)
    base_cap = sum(o.low * o.capacity for o in fixed)
    base_spot = sum(o.low * o.capacity for o in fixed if o.spot)
    spot_ceiling = base_spot + sum(o.high * o.capacity for o in free if o.spot)

    highs: list[int] = []
    for o in free:
        need = demand
        if not o.spot and 0 < fraction < 1:
            # On-demand capacity beyond this is never needed, even to balance spot.
            need = max(need, spot_ceiling * (1 - fraction) / fraction)
        highs.append(min(o.high, max(o.low, math.ceil((need - _EPS) / o.capacity))))

    count = len(free)
    suffix_low_cost = [0.0] * (count + 1)
    suffix_low_cap = [0.0] * (count + 1)
    suffix_high_cap = [0.0] * (count + 1)
    for i in range(count - 1, -1, -1):
        o = free[i]
        suffix_low_cost[i] = suffix_low_cost[i + 1] + o.low * o.cost
        suffix_low_cap[i] = suffix_low_cap[i + 1] + o.low * o.capacity
        suffix_high_cap[i] = suffix_high_cap[i + 1] + highs[i] * o.capacity

    best: list[tuple[tuple[float, float], list[int]] | None] = [None]
    counts = [0] * count

    def lower_bound(i: int, cost: float, cap: float) -> float:
        extra = demand - cap - suffix_low_cap[i]
        bound = cost + suffix_low_cost[i]
        if extra > _EPS and i < count:
            bound += extra * free[i].cost / free[i].capacity  # LP relaxation of the rest
        return bound

    def offer(cost: float, cap: float, spot: float) -> None:
        if not _spot_ok(spot, cap, fraction):
            return
        key = _key(cost, cap, demand)
        if best[0] is None or _better(key, best[0][0]):
            best[0] = (key, counts.copy())

    def last(o: PoolOption, high: int, cost: float, cap: float, spot: float) -> None:
        # The last pool's best count in closed form: the feasible counts form an
        # interval [lo, hi] (the spot share bounds it from one side), coverage grows and
        # cost grows with the count, so the best is the smallest count that covers, or
        # the largest feasible one when none covers.
        lo, hi = o.low, high
        c = o.capacity
        if fraction < 1:
            if o.spot:  # spot + n c <= f (cap + n c)
                room = fraction * cap - spot
                hi = min(hi, math.floor(room / ((1 - fraction) * c) + _EPS)) if room >= -_EPS \
                    else lo - 1
            elif spot > _EPS:  # spot <= f (cap + n c)
                if fraction <= 0:
                    return
                lo = max(lo, math.ceil((spot / fraction - cap) / c - _EPS))
        if lo > hi:
            return
        cover = math.ceil((demand - cap - _EPS) / c)  # within _EPS counts as covered
        n = max(lo, min(cover, hi))
        counts[count - 1] = n
        offer(cost + n * o.cost, cap + n * c, spot + (n * c if o.spot else 0.0))

    def visit(i: int, cost: float, cap: float, spot: float) -> None:
        if i == count:
            offer(cost, cap, spot)
            return
        o = free[i]
        if i == count - 1:
            last(o, highs[i], cost, cap, spot)
            return
        for n in range(o.low, highs[i] + 1):
            c = cost + n * o.cost
            k = cap + n * o.capacity
            s = spot + (n * o.capacity if o.spot else 0.0)
            if best[0] is not None:
                optimistic = (-min(demand, k + suffix_high_cap[i + 1]), lower_bound(i + 1, c, k))
                if not _better(optimistic, best[0][0]):
                    if -optimistic[0] + _EPS >= demand and k + suffix_low_cap[i + 1] >= demand:
                        break  # covered already: more replicas here only cost more
                    continue
            counts[i] = n
            visit(i + 1, c, k, s)

    visit(0, base_cost, base_cap, base_spot)
    if best[0] is None:
        return None
    result = {o.name: o.low for o in fixed}
    result.update({o.name: n for o, n in zip(free, best[0][1], strict=True)})
    ordered = {o.name: result[o.name] for o in options}
    return evaluate(options, ordered)


def optimise_round_robin(options: Sequence[PoolOption], demand: float,
                         max_spot_fraction: float) -> Plan:
    """The same problem behind a plain Service, which spreads requests evenly over the
    Ready replicas: a mix then serves (replicas in use) × (capacity of the slowest one).

    Exact by enumeration of the slowest speed in use: for each candidate speed c, pools
    slower than c stay at zero (a floor above zero rules c out), faster ones count as c
    per replica, and the usual optimiser solves that. The best over every c wins.
    """
    speeds = sorted({o.capacity for o in options if o.capacity > 0})
    demand = max(demand, 0.0)
    for fraction in (max_spot_fraction, 1.0):  # drop the spot fraction only if nothing meets it
        best: Plan | None = None
        for speed in speeds:
            if any(0 < o.capacity < speed and o.low > 0 for o in options):
                continue
            equalised = [
                o if o.capacity <= 0
                else replace(o, capacity=0.0, high=0) if o.capacity < speed
                else replace(o, capacity=speed)
                for o in options
            ]
            plan = _search(equalised, demand, fraction)
            if plan is None:
                continue
            if best is None or _better(_key(plan.cost, plan.capacity, demand),
                                       _key(best.cost, best.capacity, demand)):
                best = plan
        if best is not None:
            return best
    return optimise(options, demand, max_spot_fraction)  # no pool counts towards capacity


def round_robin_capacity(counts: Mapping[str, int], capacity: Mapping[str, float]) -> float:
    """What a mix serves when every Ready replica gets an equal share of requests."""
    used = [name for name, n in counts.items() if n > 0 and capacity[name] > 0]
    if not used:
        return 0.0
    return sum(counts[name] for name in used) * min(capacity[name] for name in used)


def brute_force(options: Sequence[PoolOption], demand: float, max_spot_fraction: float) -> Plan:
    """Every combination within the bounds; the reference the optimiser is checked against."""

    def run(fraction: float) -> Plan | None:
        best: tuple[tuple[float, float], Plan] | None = None
        ranges = [range(o.low, o.high + 1) for o in options]
        for combo in itertools.product(*ranges):
            plan = evaluate(options, {o.name: n for o, n in zip(options, combo, strict=True)})
            if not _spot_ok(plan.spot_capacity, plan.capacity, fraction):
                continue
            key = _key(plan.cost, plan.capacity, max(demand, 0.0))
            if best is None or _better(key, best[0]):
                best = (key, plan)
        return best[1] if best else None

    plan = run(max_spot_fraction) or run(1.0)
    assert plan is not None
    return plan
