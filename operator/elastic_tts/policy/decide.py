"""decide(spec, observation, memory, now) -> Decision: the whole pure decision engine.

Stages, in order: schedule -> spot back-off -> demand -> stabilise -> optimise ->
bridge (a kept-out pool that starts faster covers a panic; `policy.bridge`) ->
make-before-break -> reason. Time is an argument; nothing here reads a clock or does I/O.

Stabilisation works on demand (capacity units), as HPA does on replica counts:

    want = demand now                       scale up at once (with the default 0 s window)
    up   = min(demand over the up window)
    down = max(demand over the down window)
    sized_for > 0:  up > sized_for            -> size for `up`
                    down < sized_for * (1-tol) -> size for `down`
                    otherwise                  -> keep sized_for

The optimiser then picks the cheapest mix for the sized demand; if the previous targets
are still admissible and no dearer, they are kept, so ties never flap.

Make-before-break, when capacity moves between pools (Want/Got per tick):

    | ready after applying targets vs needed | growing pool Ready? | shrinking pools        |
    |----------------------------------------|---------------------|------------------------|
    | >= min(ready now, demand)               | any                 | shrink now             |
    | <  min(ready now, demand)               | not yet, before deadline | held at current size |
    | <  min(ready now, demand)               | deadline passed     | shrink now             |

The deadline is the growing pools' cold start plus `transitionGraceSeconds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property

from elastic_tts.policy.bridge import Bridge, bridge
from elastic_tts.policy.model import Backoff, Decision, Memory, Mode, Observation, Transition
from elastic_tts.policy.optimise import (
    Plan,
    PoolOption,
    evaluate,
    optimise,
    optimise_round_robin,
    round_robin_capacity,
)
from elastic_tts.policy.reason import describe
from elastic_tts.policy.schedule import Bounds, ScheduleState, evaluate_schedule
from elastic_tts.policy.sizing import Sizing, model_utilisation, size
from elastic_tts.policy.spec import Pool, TTSServiceSpec
from elastic_tts.policy.spot import (
    in_backoff,
    recent_interruptions,
    update_backoff,
    update_exposure,
)

_EPS = 1e-9
# A pool whose replica may wait less than this many of its own service times before the
# SLO is missed cannot share one dispatch with faster pools: both a plain Service (equal
# requests per replica) and the HTTPRoute (equal utilisation) queue it like the others.
MIN_SLACK = 1.0
# A pool's scale-down window: this many of its cold starts (at least two intervals, at
# most scaleDownStabilizationSeconds). Shedding a replica too early costs one cold start
# of short capacity, so a 30 s CPU replica can go far sooner than a 120 s GPU one.
COLD_START_WINDOWS = 1.0


def slack(spec: TTSServiceSpec, pool: Pool) -> float:
    """How many of its own service times a request may wait on this pool's replica and
    still meet the SLO (the same for every length of 100 characters or more)."""
    return spec.scaling.latency_slo_seconds / pool.seconds_per_100_chars - 1.0


def kept_out(spec: TTSServiceSpec) -> dict[str, str]:
    """Pools too slow for the SLO once they share a dispatch with faster pools, and why.
    Applies only when some pool does have the slack; a pool alone is never kept out. In a
    panic such a pool may still bridge the wait for the faster ones (`_bridge`)."""
    slacks = {n: slack(spec, p) for n, p in spec.pools.items() if slack(spec, p) >= 0}
    if not any(v >= MIN_SLACK for v in slacks.values()):
        return {}
    return {
        n: f"{n} kept out of the mix: {spec.pools[n].seconds_per_100_chars:.1f}s per 100 "
           f"chars leaves {v:.2f} service times of queue within the "
           f"{spec.scaling.latency_slo_seconds:g}s SLO (< {MIN_SLACK:g})"
        for n, v in slacks.items() if v < MIN_SLACK
    }


def scale_down_window(spec: TTSServiceSpec, pool: Pool) -> float:
    scaling = spec.scaling
    return min(scaling.scale_down_stabilization_seconds,
               max(2 * scaling.interval_seconds, COLD_START_WINDOWS * pool.cold_start_seconds))


def capacity_per_replica(spec: TTSServiceSpec, pool: Pool) -> float:
    """Capacity of one replica in the spec's metric unit, or 0 if it cannot meet the SLO."""
    if pool.seconds_per_100_chars > spec.scaling.latency_slo_seconds + _EPS:
        return 0.0
    if spec.scaling.metric == "requests":
        return pool.throughput / spec.scaling.characters_per_request
    return pool.throughput


def demand_of(spec: TTSServiceSpec, observation: Observation) -> float | None:
    """Load wanted as capacity: the larger of the short and long rates over the target
    utilisation. None when there is no usable rate."""
    rates = [r for r in (observation.short_rate, observation.long_rate) if r is not None]
    if not observation.metrics_available or not rates:
        return None
    return max(max(rates), 0.0) / spec.scaling.target_utilization


@dataclass(frozen=True)
class _Context:
    spec: TTSServiceSpec
    observation: Observation
    now: float
    schedule: ScheduleState
    backoff: Mapping[str, Backoff]
    capacity: Mapping[str, float]  # per replica, 0 when it does not count now

    @property
    def round_robin(self) -> bool:
        # Without a capacity-weighted HTTPRoute, the one Service spreads requests evenly
        # over Ready replicas, so a slow replica in the mix limits every replica.
        return not self.spec.routing.enabled

    def solve(self, options: list[PoolOption], demand: float) -> Plan:
        fraction = self.spec.scaling.max_spot_fraction
        if self.round_robin:
            return optimise_round_robin(options, demand, fraction)
        return optimise(options, demand, fraction)

    @cached_property
    def kept_out(self) -> frozenset[str]:
        return frozenset(kept_out(self.spec))

    def serving(self, counts: Mapping[str, int], capacity: Mapping[str, float]) -> float:
        # A kept-out pool serves only while no faster pool has replicas (`kept_out`); the
        # alone plan's context counts it, and a mix with a held faster pool must not.
        if self.kept_out and any(counts.get(n, 0) and capacity.get(n, 0.0) > 0
                                 for n in counts if n not in self.kept_out):
            capacity = {n: 0.0 if n in self.kept_out else c for n, c in capacity.items()}
        if self.round_robin:
            return round_robin_capacity(counts, capacity)
        return sum(n * capacity[name] for name, n in counts.items())


def _options(ctx: _Context, floors: Mapping[str, int]) -> list[PoolOption]:
    options = []
    for pool in ctx.spec.pools.values():
        bounds = ctx.schedule.bounds[pool.name]
        low, high = bounds.low, bounds.high
        if in_backoff(ctx.backoff, pool.name, ctx.now):
            # Backed off: no new replica on this pool, but those Ready keep serving (they
            # cost nothing more than before); the optimiser covers the rest elsewhere.
            high = min(high, max(low, ctx.observation.pool(pool.name).ready))
        low = min(max(low, floors.get(pool.name, 0)), high)
        options.append(
            PoolOption(pool.name, ctx.capacity[pool.name], pool.cost_per_hour, low, high,
                       pool.is_spot)
        )
    return options


def _capacities(spec: TTSServiceSpec) -> dict[str, float]:
    """Capacity per replica of each pool that counts; a spot pool in back-off still
    counts for the replicas it has Ready (`_options` lets it keep only those)."""
    out = kept_out(spec)
    return {name: 0.0 if name in out else capacity_per_replica(spec, pool)
            for name, pool in spec.pools.items()}


def _admissible(ctx: _Context, options: list[PoolOption], counts: Mapping[str, int],
                demand: float) -> Plan | None:
    """The previous targets as a plan, if they are still within bounds and still cover
    the demand within the spot fraction; else None."""
    if set(counts) != {o.name for o in options}:
        return None
    if any(not o.low <= counts[o.name] <= o.high for o in options):
        return None
    plan = evaluate(options, dict(counts))
    if ctx.round_robin:  # every replica in use counts at the slowest one's speed
        used = [o for o in options if counts[o.name] > 0 and o.capacity > 0]
        speed = min((o.capacity for o in used), default=0.0)
        spot = sum(counts[o.name] * speed for o in used if o.spot)
        plan = Plan(plan.counts, plan.cost, ctx.serving(counts, ctx.capacity), spot)
    fraction = ctx.spec.scaling.max_spot_fraction
    if not plan.covers(demand) or plan.spot_capacity > fraction * plan.capacity + _EPS:
        return None
    return plan


def demand_window(spec: TTSServiceSpec) -> float:
    """The demand itself is held for the shortest pool window; longer-lived pools hold
    their own replica counts for their own windows (`_hold`)."""
    return min((scale_down_window(spec, p) for p in spec.pools.values()),
               default=spec.scaling.scale_down_stabilization_seconds)


def _stabilise(spec: TTSServiceSpec, memory: Memory, demand: float, now: float
               ) -> tuple[float, tuple[tuple[float, float], ...], str]:
    scaling = spec.scaling
    window = demand_window(spec)
    horizon = max(window, scaling.scale_up_stabilization_seconds)
    recent = tuple(s for s in memory.samples if now - horizon <= s[0] < now)
    samples = (*recent, (now, demand))
    up = min(d for t, d in samples if t >= now - scaling.scale_up_stabilization_seconds)
    down = max(d for t, d in samples if t >= now - window)
    sized = memory.sized_for
    if not memory.targets or up > sized + _EPS:
        return up, samples, "up"
    if down < sized * (1 - scaling.tolerance) - _EPS:
        return down, samples, "down"
    if down < sized - _EPS:
        return sized, samples, "tolerance"
    return sized, samples, "stabilising" if demand < sized - _EPS else "steady"


def _ready_serving(ctx: _Context, ready: Mapping[str, int]) -> float:
    """What these Ready replicas serve within the SLO, whether or not their pool counts in
    the new plan: a pool kept out of mixes serves at its real capacity while it serves
    alone (no faster pool has a Ready replica), and nothing once it shares the dispatch;
    a pool backed off or outside the plan serves what its replicas do."""
    return ctx.serving(ready, {n: capacity_per_replica(ctx.spec, p)
                               for n, p in ctx.spec.pools.items()})


def _make_before_break(ctx: _Context, memory: Memory, targets: dict[str, int],
                       demand: float) -> tuple[dict[str, int], Transition | None]:
    states = {name: ctx.observation.pool(name) for name in ctx.spec.pools}
    shrinking = [n for n, t in targets.items() if t < states[n].current]
    growing = [n for n, t in targets.items() if t > states[n].ready and ctx.capacity[n] > 0]
    if not shrinking or not growing:
        return targets, None
    ready_now = _ready_serving(ctx, {n: states[n].ready for n in targets})
    ready_after = _ready_serving(ctx, {n: min(t, states[n].ready) for n, t in targets.items()})
    if ready_after + _EPS >= min(ready_now, demand):
        return targets, None
    # The wait goes on for the pools already waited for (a new tick does not start it
    # again); a pool that starts growing only now gets its own cold start plus grace.
    waited = memory.transition.growing if memory.transition is not None else ()
    new = [n for n in growing if n not in waited]
    deadline = memory.transition.deadline if memory.transition is not None else ctx.now
    if new or memory.transition is None:
        cold = max(ctx.spec.pools[n].cold_start_seconds for n in new or growing)
        deadline = max(deadline, ctx.now + cold + ctx.spec.scaling.transition_grace_seconds)
    growing = sorted({*waited, *growing})
    if ctx.now >= deadline:
        # Remember the expired deadline, so the next tick does not start a new wait.
        return targets, Transition({}, deadline, tuple(growing))
    held = dict(targets)
    for name in shrinking:
        # Only replicas that serve are worth keeping; Pending ones carry nothing.
        keep = min(states[name].current, states[name].ready, ctx.schedule.bounds[name].high)
        held[name] = max(targets[name], keep)
    holding = {n: held[n] for n in shrinking if held[n] > targets[n]}
    if not holding:
        return targets, None
    return held, Transition(holding, deadline, tuple(growing))


def _mode(spec: TTSServiceSpec, ctx: _Context, targets: Mapping[str, int]) -> Mode:
    if ctx.schedule.mode == "shutdown":
        return "shutdown"
    if ctx.schedule.mode == "cpu-only":
        return "cpu-only"
    if any(in_backoff(ctx.backoff, p, ctx.now) for p in spec.pools):
        return "fallback"
    if any(spec.pools[n].is_gpu and t > 0 for n, t in targets.items()):
        return "peak"
    return "off-peak"


def _cost(spec: TTSServiceSpec, targets: Mapping[str, int]) -> float:
    return sum(spec.pools[n].cost_per_hour * t for n, t in targets.items())


def _clamp(counts: Mapping[str, int], bounds: Mapping[str, Bounds]) -> dict[str, int]:
    return {n: min(max(counts.get(n, 0), b.low), b.high) for n, b in bounds.items()}


def decide(spec: TTSServiceSpec, observation: Observation, memory: Memory, now: float
           ) -> Decision:
    schedule = evaluate_schedule(spec, now)
    interruptions = recent_interruptions(spec, observation, memory.interruptions, now)
    backoff = update_backoff(spec, observation, memory.backoff, now, interruptions,
                             memory.spot_exposure)
    exposure = update_exposure(spec, observation, memory.spot_exposure, backoff, now,
                               interruptions)
    ctx = _Context(spec, observation, now, schedule, backoff, _capacities(spec))
    current = {n: observation.pool(n).current for n in spec.pools}
    retry = {n: b.until for n, b in backoff.items() if now < b.until}

    def finish(targets: dict[str, int], mode: Mode, demand: float | None, held: bool,
               new_memory: Memory, notes: list[str]) -> Decision:
        capacity = ctx.serving(targets, ctx.capacity)
        return Decision(
            replicas=targets, mode=mode, cost_per_hour=round(_cost(spec, targets), 6),
            reason=describe(spec, ctx.schedule, current, targets, notes),
            demand=demand, capacity=capacity, window=schedule.window_name,
            metrics_held=held, spot_backoff=retry, memory=new_memory,
        )

    if spec.paused:
        return finish(dict(current), "paused", demand_of(spec, observation), False,
                      memory, ["paused: replicas left as they are"])

    demand = demand_of(spec, observation)
    if demand is None:
        missing = spec.scaling.on_metrics_unavailable
        base = spec.scaling.fallback_replicas if missing == "fallbackReplicas" else current
        targets = _clamp(base, schedule.bounds)
        # While blind, assume the demand the targets were sized for: when readings come
        # back, the first ones (a rate over one or two fresh scrapes) cannot scale down
        # before a whole scale-down window of them agrees, as without the outage.
        horizon = max(spec.scaling.scale_down_stabilization_seconds,
                      spec.scaling.scale_up_stabilization_seconds)
        blind = (*(s for s in memory.samples if now - horizon <= s[0] < now),
                 (now, memory.sized_for)) if memory.targets else memory.samples
        kept = Memory(blind, memory.sized_for, targets, backoff, None, plans=memory.plans,
                      bursts=memory.bursts, episodes=memory.episodes,
                      utilisation=memory.utilisation,
                      interruptions=interruptions, spot_exposure=exposure)
        what = "fallback replicas" if missing == "fallbackReplicas" else "holding replicas"
        return finish(targets, _mode(spec, ctx, targets), None, True, kept,
                      [f"metrics unavailable: {what}"])

    states = {n: observation.pool(n) for n in spec.pools}
    ready_capacity = ctx.serving({n: states[n].ready for n in spec.pools}, ctx.capacity)
    sizing = size(spec, observation, memory, now, ready_capacity,
                  sum(states[n].ready * p.concurrency for n, p in spec.pools.items()),
                  min((slack(spec, p) for n, p in spec.pools.items()
                       if capacity_per_replica(spec, p) > 0 and n not in kept_out(spec)),
                      default=0.0),
                  ctx.serving({n: states[n].current for n in spec.pools}, ctx.capacity),
                  demand_window(spec), _settled(ctx, memory.plans))
    demand = sizing.demand
    sized, samples, direction = _stabilise(spec, memory, demand, now)
    plan = _plan(ctx, memory, sized)
    alone = _alone(ctx, memory, sized, sizing)
    if alone is not None and _prefer_alone(plan, sized, *alone[1:]):
        ctx, plan = alone[0], alone[1]
    chosen = dict(plan.counts)
    plans = tuple(p for p in memory.plans if now - _plan_horizon(spec) <= p[0] < now)
    held = _hold(ctx, chosen, plans, sized)
    # A burst (the short rate above the long one, out of its noise) whose reading panics,
    # or that finds nothing Ready that counts: panic has nothing to protect then, but the
    # burst waits a cold start all the same. A load that starts steady is no burst, even while its
    # replicas start: it is scaled for, not bridged; nor is a shortfall that has not
    # lasted the bridge's cold start and a tick (`policy.bridge`).
    short = sizing.rising and (sizing.panicking or ready_capacity <= 0)
    since = (now if memory.short_since is None else memory.short_since) if short else None
    bridged = _bridge(ctx, held, max(sized, sizing.wanted), ready_capacity, interruptions,
                      now - since) if since is not None else None
    if bridged is not None:
        held = {n: max(c, bridged.replicas.get(n, 0)) for n, c in held.items()}
    if sizing.panic:
        # Nothing scales down while the burst lasts: a pool that counts keeps what it asks
        # for, one that does not grow (backed off, kept out) at least what it has Ready.
        counts = {n: ctx.capacity[n] > 0 and not in_backoff(backoff, n, now) for n in held}
        steady = {n: max(c, min(current[n] if counts[n] else states[n].ready,
                                schedule.bounds[n].high)) for n, c in held.items()}
        # Keep nothing that would leave less served than the plan would (as `_hold`
        # does): behind a plain Service a kept slower replica paces the whole mix.
        if ctx.serving(steady, ctx.capacity) + _EPS >= min(
                sized, ctx.serving(held, ctx.capacity)):
            held = steady
    targets, transition = _make_before_break(ctx, memory, held, sized)

    notes = _notes(spec, ctx, demand, sized, direction, plan, transition, sizing, bridged)
    new_memory = Memory(samples, sized, dict(held), backoff, transition,
                        plans=(*plans, (now, chosen)), bursts=sizing.bursts,
                        episodes=sizing.episodes,
                        utilisation=sizing.learned, panic_until=sizing.panic_until,
                        short_since=since,
                        calibrate_after=sizing.calibrate_after,
                        interruptions=interruptions, spot_exposure=exposure)
    return finish(targets, _mode(spec, ctx, targets), sized, False, new_memory, notes)


def _settled(ctx: _Context, plans: tuple[tuple[float, Mapping[str, int]], ...]) -> float:
    """The capacity every plan of the last cold start (the longest pool's) and a tick
    was sized to serve, the least of them: the replicas behind it have had the time to
    be Ready, so a Ready capacity short of it was lost (interrupted, Pending in a
    shortage), not on its way. Whole plans, not pools: during a transition the targets
    add the old mix to the new one, while each plan is one mix sized for the demand."""
    cold = max((p.cold_start_seconds for p in ctx.spec.pools.values()), default=0.0)
    since = ctx.now - cold - ctx.spec.scaling.interval_seconds
    recent = [p for t, p in plans if t >= since - _EPS]
    if not recent or not any(t <= since + _EPS for t, _ in plans):
        return 0.0  # no plan that old, or none since (ticks far apart): unknown
    # a pool no longer in the spec (memory from an edited spec) serves nothing
    return min(ctx.serving({n: c for n, c in p.items() if n in ctx.capacity}, ctx.capacity)
               for p in recent)


def _bridge(ctx: _Context, held: Mapping[str, int], sized: float, ready_capacity: float,
            interruptions: Mapping[str, tuple[tuple[float, int], ...]], lasted: float
            ) -> Bridge | None:
    """The kept-out pools' stop-gap in a panic (`policy.bridge`): the shortfall is the
    demand that the Ready replicas which count, and those lost to spot interruptions
    (replaced on their own pool), do not cover. Not when the kept-out pools serve alone."""
    out = kept_out(ctx.spec)
    if not out or any(ctx.capacity[n] > 0 for n in out):
        return None
    lost = sum(n * ctx.capacity[pool] for pool, events in interruptions.items()
               for _, n in events)
    raw = {n: capacity_per_replica(ctx.spec, p) for n, p in ctx.spec.pools.items()}
    states = {n: ctx.observation.pool(n) for n in ctx.spec.pools}
    return bridge(ctx.spec, out, raw, ctx.capacity, states, held, ctx.schedule.bounds,
                  sized - ready_capacity - lost, lasted)


def _plan(ctx: _Context, memory: Memory, sized: float,
          options: list[PoolOption] | None = None) -> Plan:
    """The cheapest mix, or the previous targets when still admissible and no dearer."""
    options = options if options is not None else _options(ctx, {})
    plan = ctx.solve(options, sized)
    previous = _admissible(ctx, options, memory.targets, sized)
    if previous is not None and previous.cost <= plan.cost + _EPS:
        return previous
    return plan


def _alone(ctx: _Context, memory: Memory, sized: float, sizing: Sizing
           ) -> tuple[_Context, Plan, float] | None:
    """The pools kept out of mixes may still serve alone, with every faster pool at zero
    (as a cpu-only service would). Once the refusals calibrate the utilisation for the
    faster pools, the slower ones are sized for their own, lower one (the queueing
    estimate's ratio), so that alone they meet the SLO as well. Returns the context, the
    plan and the demand it was sized for, or None when a faster pool has a floor, or has
    replicas in a panic (which scales nothing down: beside them the slower pools serve
    nothing, so the alone plan would serve less than the mix)."""
    spec = ctx.spec
    out = kept_out(spec)
    if not out:
        return None
    raw = {n: capacity_per_replica(spec, p) for n, p in spec.pools.items()}
    alone_ctx = replace(ctx, capacity=raw)
    options = []
    for option in _options(alone_ctx, {}):
        if option.name not in out and raw[option.name] > 0:  # a faster pool: none of it
            if option.low > 0 or (sizing.panic and ctx.observation.pool(option.name).current):
                return None
            option = replace(option, high=0)
        options.append(option)  # a pool too slow for any SLO keeps its floor, serving none
    factor = 1.0
    if sizing.learned is not None:
        mixed = [slack(spec, p) for n, p in spec.pools.items() if n not in out and raw[n] > 0]
        factor = max(1.0, model_utilisation(min(mixed, default=0.0))
                     / model_utilisation(min(slack(spec, spec.pools[n]) for n in out)))
    wanted = sized * factor
    return alone_ctx, _plan(alone_ctx, memory, wanted, options), wanted


def _prefer_alone(mixed: Plan, sized: float, alone: Plan, wanted: float) -> bool:
    """The alone plan wins when it covers its demand and the mix does not or costs more;
    when neither covers (every ceiling exceeded), the one that serves more."""
    if alone.covers(wanted):
        return not mixed.covers(sized) or alone.cost < mixed.cost - _EPS
    return not mixed.covers(sized) and alone.capacity > mixed.capacity + _EPS


def _longest_window(spec: TTSServiceSpec) -> float:
    return max((scale_down_window(spec, p) for p in spec.pools.values()), default=0.0)


def _plan_horizon(spec: TTSServiceSpec) -> float:
    """How long the plans are kept: the longest scale-down window (`_hold`), and at least
    a cold start and two ticks, so that `_settled` sees a plan older than a cold start
    and a tick whatever the jitter of the ticks."""
    longest_start = max((p.cold_start_seconds for p in spec.pools.values()), default=0.0)
    return max(_longest_window(spec), longest_start + 2 * spec.scaling.interval_seconds)


def _hold(ctx: _Context, chosen: Mapping[str, int],
          plans: tuple[tuple[float, Mapping[str, int]], ...], sized: float) -> dict[str, int]:
    """Each pool keeps the most replicas any plan asked of it within its own scale-down
    window (HPA's rule, per pool), less the shortest window, for which the demand itself
    is held. The holds are dropped when they would leave the demand uncovered: behind a
    plain Service a held slow replica lowers what the mix serves, and beside any held
    replica of a faster pool the alone plan's kept-out pools serve nothing."""
    held = dict(chosen)
    shortest = demand_window(ctx.spec)  # the demand is already held this long
    for name, count in chosen.items():
        if ctx.capacity[name] <= 0 or in_backoff(ctx.backoff, name, ctx.now):
            continue  # kept out or backed off: no window holds it above what it serves
        window = scale_down_window(ctx.spec, ctx.spec.pools[name]) - shortest
        past = [p.get(name, 0) for t, p in plans if ctx.now - window <= t]
        held[name] = min(max(count, *past) if past else count, ctx.schedule.bounds[name].high)
    if ctx.serving(held, ctx.capacity) + _EPS < min(
            sized, ctx.serving(chosen, ctx.capacity)):
        return dict(chosen)
    return held


def _notes(spec: TTSServiceSpec, ctx: _Context, demand: float, sized: float, direction: str,
           plan: Plan, transition: Transition | None, sizing: Sizing,
           bridged: Bridge | None) -> list[str]:
    unit = "chars/s" if spec.scaling.metric == "characters" else "req/s"
    window = demand_window(spec)
    notes = []
    if direction == "stabilising":
        notes.append(
            f"demand {demand:.0f} {unit}, holding for {sized:.0f} seen in last {window:.0f}s"
        )
    elif direction == "tolerance":
        notes.append(f"demand {demand:.0f} {unit} within tolerance of {sized:.0f}")
    else:
        notes.append(f"demand {sized:.0f} {unit}")
    if ctx.schedule.mode == "shutdown":
        pass  # the window explains the zero; "exceeds every ceiling" would be noise
    elif not plan.covers(sized):
        notes.append(f"exceeds every ceiling: capacity {plan.capacity:.0f} {unit}")
    else:
        at_ceiling = [
            f"{o} ceiling {ctx.schedule.bounds[o].high * ctx.capacity[o]:.0f}"
            for o, n in plan.counts.items()
            if ctx.capacity[o] > 0 and n == ctx.schedule.bounds[o].high and n > 0
        ]
        if at_ceiling and direction == "up":
            notes[-1] += " exceeds " + ", ".join(at_ceiling)
    if sizing.used_short:
        notes.append("short rate above its noise")
    if sizing.headroom > 1.0 + 1e-6:
        notes.append(f"burst headroom {sizing.headroom:.2f}")
    if sizing.floor > 0:
        notes.append(f"warm for recurring bursts of {sizing.floor:.0f} {unit}")
    if sizing.backlog_rate > 0.5:
        notes.append(f"backlog and refusals {sizing.backlog_rate:.0f} {unit}")
    if sizing.utilisation < spec.scaling.target_utilization - 1e-6:
        notes.append(f"sizing for {sizing.utilisation:.0%} utilisation: workers refuse")
    if sizing.panic:
        notes.append("panic: burst above twice the ready capacity, no scale-down")
    if bridged is not None:
        for name, count in bridged.replicas.items():
            faster = spec.pools[name].cold_start_seconds
            notes.append(
                f"{name} bridging {bridged.shortfall:.0f} {unit} with {count} until "
                f"{', '.join(bridged.waiting_for)} is Ready ({faster:g}s cold start against "
                f"{bridged.cold_start:g}s, in a panic)")
    slow = [p.name for p in spec.pools.values() if capacity_per_replica(spec, p) == 0]
    if slow:
        notes.append(f"{', '.join(slow)} too slow for the SLO")
    out = kept_out(spec)
    if out and any(ctx.capacity[n] > 0 for n in out):
        notes.append(f"{', '.join(out)} serving alone (kept out of mixes with faster pools)")
    else:
        notes.extend(out.values())
    for pool, name in ctx.schedule.prewarm.items():
        notes.append(f"prewarming {pool} for window {name!r}")
    covering = [n for n, c in plan.counts.items()
                if c > 0 and ctx.capacity[n] > 0 and not spec.pools[n].is_spot]
    for name, entry in ctx.backoff.items():
        if ctx.now < entry.until:
            via = f", covered by {', '.join(covering)}" if covering else ""
            notes.append(f"{name} backed off ({entry.cause}) for "
                         f"{entry.until - ctx.now:.0f}s{via}")
    if any(p.is_spot for p in spec.pools.values()) and not any(
        ctx.now < b.until for b in ctx.backoff.values()
    ):
        notes.append("spot healthy")
    if transition is not None and transition.held:
        held = ", ".join(f"{n} at {c}" for n, c in transition.held.items())
        notes.append(f"holding {held} until new capacity is Ready "
                     f"(at most {transition.deadline - ctx.now:.0f}s)")
    return notes
