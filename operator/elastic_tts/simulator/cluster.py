"""The simulated cluster: replicas per pool, their lifecycle, the worker's admission, the
client's retries, dispatch and billing. It models what the product deploys, as it behaves.

Replica lifecycle (times in seconds from the start of the trace):

    requested --(spot shortage: Pending until it ends, not billed)--> starting --cold start--> ready
    ready --scale-down--> draining (out of the endpoints; finishes what it admitted) --> gone
    spot: interruption notice --> draining, the Deployment asks for a replacement
          --notice--> killed (what it had not finished is lost; the clients retry)

The worker (ADMISSION.md, per replica = one worker process): `concurrency` slots S that
each serve throughput/S characters/s, and a FIFO queue of at most `max_queue` requests.
For a request of c characters: W = admitted characters not yet synthesised / throughput
(0 when a slot is free), T = c * S / throughput, B = latencySLOSeconds * max(1, c/100).
It is admitted when a slot is free, or when the queue has room and W + T <= B; otherwise
the answer is 429 with Retry-After = whole seconds until the backlog ahead has drained
enough (at least 1). The throughput estimate is exact here: a simulated replica serves
exactly its pool's `throughput`.

The client: each attempt goes on a fresh connection. On 429 it waits retry-after-ms
(ADMISSION.md, 21:00: min(drain, TTS_RETRY_BASE_MS x 2^attempt), as openai-python honours
it), or, for the sensitivity run's clients that read only Retry-After, whole seconds (at
least 1); either way the retry happens at its exact time, not rounded to the 1 s step.
On a refused connection (no Ready endpoint), a gateway 503 (the chosen backend has no
Ready endpoint) or a connection lost with a killed node it retries after 1 s. It gives up
`client_timeout` seconds after its first attempt. A request's latency runs from its
first attempt to its final answer; one never answered in time counts as a miss.

How replicas really behave can differ from what the spec declares (`ReplicaBehaviour`,
for replaying a measured run): their throughput, their cold start, and how much of it
they spend Pending (before the container starts: scheduling, node, image), which the
engine sees as pending, as the operator does, and may fall back from. By default they
serve the declared throughput, start in the declared cold start and are never Pending
(except in a spot shortage).

Load counted once: the offered-load counters count a request when its first attempt
(no X-Retry-Attempt) reaches a worker, as the worker does; retries never add to them.

Dispatch, chosen per run:
- service: a plain Kubernetes Service; kube-proxy picks a Ready endpoint at random for
  each connection, whatever its pool or its queue.
- route: the Gateway API HTTPRoute the operator renders with `routing.enabled`: a backend
  Service per pool, picked at random in proportion to the route's weights (as a gateway
  splits traffic over weighted backendRefs), then a random Ready endpoint of that
  Service. The weights are whatever the controller last wrote (`set_route_weights`), so
  they lag readiness by up to one tick, as the real route does.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from elastic_tts.policy.model import PoolState
from elastic_tts.policy.spec import Pool
from elastic_tts.simulator.trace import FloatArray, IntArray

PENDING, STARTING, READY, DRAINING, GONE = range(5)
SERVICE = "service"
ROUTE = "route"
DISPATCHES = (ROUTE, SERVICE)
RETRY_SECONDS = 1.0  # a refused connection, a gateway 503 or a lost connection
_UNIFORMS = 1 << 16  # random draws made at once for dispatch


@dataclass(frozen=True)
class SpotConditions:
    interruptions_per_hour: float = 0.05  # Poisson rate per spot replica, from its start
    notice_seconds: float = 120.0  # AWS gives 2 minutes; GCP 30 s
    shortages: tuple[tuple[float, float], ...] = ()  # (start, end): no new spot capacity
    waves: tuple[float, ...] = ()  # times a wave of interruptions begins
    wave_fraction: float = 0.5  # share of each pool's spot replicas a wave takes
    wave_spread_seconds: float = 180.0  # a wave's interruptions fall within this


@dataclass(frozen=True)
class WorkerModel:
    max_queue: int = 32  # TTS_MAX_QUEUE
    client_timeout: float = 60.0  # the client gives up this long after its first attempt
    retry_base: float = 0.1  # TTS_RETRY_BASE_MS, in seconds
    # The client honours retry-after-ms (as openai-python does); False: a client that
    # reads only Retry-After (whole seconds, at least 1), the sensitivity run.
    retry_hint: bool = True

    def retry_wait(self, drain: float, attempt: int) -> float:
        """How long a refused client waits: `drain` is the exact time until the replica
        could admit the request, `attempt` the refused attempt's X-Retry-Attempt. The
        worker sends retry-after-ms = min(drain, base x 2^attempt) in whole milliseconds
        (the back-off alone when the drain is under 1 ms), and Retry-After = drain in
        whole seconds, at least 1."""
        retry_after = max(1.0, math.ceil(drain - 1e-9))
        if self.retry_hint:
            backoff = self.retry_base * 2.0 ** min(attempt, 30)
            # As the worker's tts_worker.admission.retry_hint_ms: a drain under 1 ms (the
            # estimate behind) gives the back-off alone.
            hint = backoff if drain < 0.001 else min(drain, backoff)
            hint = max(1, math.ceil(hint * 1000 - 1e-6)) / 1000
            if hint <= 60.0:  # the client honours a hint in (0, 60 s], else Retry-After
                return hint
        return retry_after


@dataclass(frozen=True)
class ReplicaBehaviour:
    """How one pool's replicas really behave, where it differs from the spec."""

    throughput: float  # characters/s one replica serves, every slot busy
    cold_start_seconds: float  # from being asked for to Ready
    pending_seconds: float = 0.0  # the first part of the cold start, spent Pending


class Replica:
    __slots__ = ("assigned", "billed_from", "busy_until", "id", "pool", "queue", "ready_at",
                 "requested", "slots", "state")

    def __init__(self, rid: int, pool: PoolRuntime, requested: float) -> None:
        self.id = rid
        self.pool = pool
        self.requested = requested
        # Billing starts when a node is launched for it: at once, but in a spot shortage
        # only when the shortage ends (no spot node exists meanwhile, so none is paid for).
        self.billed_from = requested
        self.ready_at = math.inf
        self.state = STARTING
        self.slots: list[float] = []  # when each slot is next free
        self.queue: deque[float] = deque()  # start times of admitted requests still waiting
        self.assigned: list[int] = []  # requests admitted (spot replicas only)
        self.busy_until = requested


class PoolRuntime:
    def __init__(self, index: int, pool: Pool, behaviour: ReplicaBehaviour | None = None
                 ) -> None:
        self.index = index
        self.spec = pool
        behaviour = behaviour or ReplicaBehaviour(pool.throughput, pool.cold_start_seconds)
        self.slot_speed = behaviour.throughput / pool.concurrency
        self.cold_start = behaviour.cold_start_seconds
        self.pending_seconds = min(behaviour.pending_seconds, self.cold_start)
        self.price_per_second = pool.cost_per_hour / 3600.0
        self.live: list[Replica] = []  # asked for and not leaving: pending, starting, ready
        self.ready: list[Replica] = []
        self.draining: list[Replica] = []
        self.billed = 0  # replicas costing money now (live + draining)
        self.interrupted = 0  # since the controller last looked
        self.spillover: PoolRuntime | None = None  # Karpenter's on-demand fallback
        self.replica_seconds = 0.0
        # the worker's counters, summed over the pool's replicas
        self.offered_chars = 0.0
        self.offered_requests = 0
        self.refusals = 0
        self.refused_chars = 0.0

    def state(self, now: float) -> PoolState:
        pending = [r for r in self.live if r.state == PENDING]
        oldest = min((r.requested for r in pending), default=now)
        return PoolState(current=len(self.live), ready=len(self.ready), pending=len(pending),
                         pending_seconds=now - oldest, interrupted=self.interrupted)

    def gauges(self, now: float) -> tuple[float, int]:
        """tts_backlog_characters and tts_queue_depth, summed over the pool."""
        backlog, depth = 0.0, 0
        for replica in (*self.ready, *self.draining):
            for free in replica.slots:
                if free > now:
                    backlog += (free - now) * self.slot_speed
            queue = replica.queue
            while queue and queue[0] <= now:
                queue.popleft()
            depth += len(queue)
        return backlog, depth


class Cluster:
    def __init__(self, pools: Mapping[str, Pool], arrivals: FloatArray, chars: IntArray,
                 budgets: FloatArray, dispatch: str, spot: SpotConditions, seed: int,
                 instant: bool = False, worker: WorkerModel | None = None,
                 behaviour: Mapping[str, ReplicaBehaviour] | None = None) -> None:
        self.pools = [PoolRuntime(i, p, (behaviour or {}).get(name))
                      for i, (name, p) in enumerate(pools.items())]
        self.by_name = {p.spec.name: p for p in self.pools}
        self.arrivals = arrivals.tolist()
        self.chars = chars.astype(np.float64).tolist()
        self.budgets = budgets.tolist()
        self.finish = np.full(arrivals.size, math.inf)
        self.tries = [0] * arrivals.size
        self.dispatch_mode = dispatch
        self.spot = spot
        self.worker = worker or WorkerModel()
        self.instant = instant  # the oracle: ready at once, never short, never interrupted
        self.rng = np.random.default_rng(seed)
        self._uniforms: list[float] = []
        self._next_uniform = 0
        self.events: list[tuple[float, int, int, Replica | None]] = []
        self.retries: list[tuple[float, int, int]] = []
        self.sequence = 0
        self.endpoints: list[Replica] = []  # every Ready replica: the plain Service
        self.route: list[tuple[float, PoolRuntime]] = []  # cumulative weights
        self.cost = 0.0
        self.changed = True
        self.spot_events: list[tuple[float, str, str]] = []  # (time, pool, what)
        self._shortage_starts = [s for s, _ in spot.shortages]
        if not instant:
            for when in spot.waves:
                self._schedule(when, _WAVE, None)

    # --- controller side ---------------------------------------------------------

    def states(self, now: float) -> dict[str, PoolState]:
        states = {p.spec.name: p.state(now) for p in self.pools}
        for p in self.pools:
            p.interrupted = 0
        return states

    def scale(self, name: str, target: int, now: float) -> None:
        pool = self.by_name[name]
        while len(pool.live) < target:
            self._create(pool, now)
        if len(pool.live) > target:
            self._remove(pool.live, len(pool.live) - target, now)

    def spill(self, spot: str, on_demand: str) -> None:
        """Karpenter's NodePool that allows spot and on-demand: a replica asked for on
        `spot` is launched on spot when spot has capacity, else on on-demand at once."""
        self.by_name[spot].spillover = self.by_name[on_demand]

    def scale_together(self, names: tuple[str, ...], target: int, now: float) -> None:
        """One Deployment whose pods land on several node pools (Karpenter): grow on the
        first pool (spilling over as above), shrink across all as a ReplicaSet does."""
        pools = [self.by_name[n] for n in names]
        live = sum(len(p.live) for p in pools)
        for _ in range(target - live):
            self._create(pools[0], now)
        if live > target:
            self._remove([r for p in pools for r in p.live], live - target, now)

    def set_route_weights(self, weights: Mapping[str, int]) -> None:
        total = 0.0
        route = []
        for name, weight in weights.items():
            if weight > 0 and name in self.by_name:
                total += weight
                route.append((total, self.by_name[name]))
        self.route = [(w / total, p) for w, p in route] if total else []

    def _create(self, pool: PoolRuntime, now: float) -> None:
        short = pool.spec.is_spot and not self.instant and self._shortage_end(now) is not None
        if short and pool.spillover is not None:
            pool = pool.spillover
            short = False
        self.sequence += 1
        replica = Replica(self.sequence, pool, now)
        pool.live.append(replica)
        if short:
            replica.billed_from = math.inf  # until its node launches (`_start`)
        else:
            pool.billed += 1
        self.changed = True
        if self.instant:
            self._ready(replica, now)
        elif short:
            replica.state = PENDING
            self._schedule(self._shortage_end(now) or now, _START, replica)
        elif pool.pending_seconds > 0:
            replica.state = PENDING
            self._schedule(now + pool.pending_seconds, _START, replica)
        else:
            self._start(replica, now)

    def start_ready(self, name: str, target: int, now: float) -> None:
        """The first decision: replicas that were already running when the trace starts.
        Spot ones draw their interruptions like any other."""
        pool = self.by_name[name]
        for _ in range(target - len(pool.live)):
            self.sequence += 1
            replica = Replica(self.sequence, pool, now)
            pool.live.append(replica)
            pool.billed += 1
            self._draw_interruption(replica, now)
            self._ready(replica, now)

    def _start(self, replica: Replica, now: float) -> None:
        replica.state = STARTING
        pool = replica.pool
        if replica.billed_from == math.inf:  # the shortage is over: its node launches now
            replica.billed_from = now
            pool.billed += 1
            self.changed = True
        # The container starts: Ready when the cold start is over, counted from the request
        # (its Pending part is behind it); after a spot shortage, from the shortage's end.
        self._schedule(max(now + pool.cold_start - pool.pending_seconds,
                           replica.requested + pool.cold_start), _READY, replica)
        self._draw_interruption(replica, now)

    def _draw_interruption(self, replica: Replica, now: float) -> None:
        rate = self.spot.interruptions_per_hour
        if replica.pool.spec.is_spot and rate > 0 and not self.instant:
            after = math.floor(self.rng.exponential(3600.0 / rate)) + 1
            self._schedule(now + after, _INTERRUPT, replica)

    def _remove(self, candidates: list[Replica], count: int, now: float) -> None:
        # Like a ReplicaSet: unscheduled and not-ready pods go first, newest first.
        order = sorted(candidates, key=lambda r: (r.state == READY, -r.requested, -r.id))
        for replica in order[:count]:
            self._leave(replica, now)

    def _leave(self, replica: Replica, now: float) -> None:
        """Stop sending work to a replica; it is billed until it has drained."""
        pool = replica.pool
        if replica in pool.live:
            pool.live.remove(replica)
        self.changed = True
        if replica.state == READY:
            replica.state = DRAINING
            pool.ready.remove(replica)
            pool.draining.append(replica)
            self.endpoints.remove(replica)
            self._schedule(max(now, replica.busy_until), _GONE, replica)
        elif replica.state in (PENDING, STARTING):
            self._gone(replica, now)

    def _gone(self, replica: Replica, now: float) -> None:
        if replica.state == GONE:
            return
        if replica.state == DRAINING:
            replica.pool.draining.remove(replica)
        replica.state = GONE
        pool = replica.pool
        if replica.billed_from == math.inf:  # left Pending in a shortage: never had a node
            return
        pool.billed -= 1
        seconds = now - replica.billed_from
        pool.replica_seconds += seconds
        self.cost += seconds * pool.price_per_second
        self.changed = True

    # --- events ------------------------------------------------------------------

    def _schedule(self, when: float, kind: int, replica: Replica | None) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (when, self.sequence, kind, replica))

    def run_events(self, until: float) -> None:
        """Handle every event before `until` (the end of this step)."""
        while self.events and self.events[0][0] < until:
            when, _, kind, replica = heapq.heappop(self.events)
            if replica is None:
                self._wave(when)
            elif kind == _READY and replica.state == STARTING:
                self._ready(replica, when)
            elif kind == _START and replica.state == PENDING:
                self._start(replica, when)
            elif kind == _GONE and replica.state == DRAINING:
                self._gone(replica, when)
            elif kind == _INTERRUPT and replica.state in (STARTING, READY, DRAINING):
                self._interrupt(replica, when)
            elif kind == _KILL and replica.state != GONE:
                self._kill(replica, when)

    def _ready(self, replica: Replica, now: float) -> None:
        pool = replica.pool
        replica.state = READY
        replica.ready_at = now
        replica.busy_until = now
        replica.slots = [now] * pool.spec.concurrency
        pool.ready.append(replica)
        self.endpoints.append(replica)
        self.changed = True

    def _wave(self, now: float) -> None:
        """Many spot replicas reclaimed within minutes (the provider wants the capacity
        back); each live spot replica is hit with probability `wave_fraction`."""
        for pool in self.pools:
            if not pool.spec.is_spot:
                continue
            self.spot_events.append((now, pool.spec.name, "wave"))
            for replica in list(pool.live):
                if self.rng.random() < self.spot.wave_fraction:
                    offset = self.rng.random() * self.spot.wave_spread_seconds
                    self._schedule(now + offset, _INTERRUPT, replica)

    def _interrupt(self, replica: Replica, now: float) -> None:
        pool = replica.pool
        pool.interrupted += 1
        self.spot_events.append((now, pool.spec.name, "interruption"))
        was_live = replica in pool.live
        self._leave(replica, now)
        if was_live:
            self._create(pool, now)  # the Deployment replaces the lost pod at once
        if self.spot.notice_seconds > 0:
            self._schedule(now + self.spot.notice_seconds, _KILL, replica)
        else:
            self._kill(replica, now)

    def _kill(self, replica: Replica, now: float) -> None:
        """The node is gone: what it had not finished is lost, and those clients retry."""
        self._gone(replica, now)
        for index in replica.assigned:
            if self.finish[index] > now and math.isfinite(self.finish[index]):
                self.finish[index] = math.inf
                self._retry(index, now + RETRY_SECONDS)
        replica.assigned = []

    def interrupt_at(self, pool: str, when: float) -> None:
        """Script an interruption of the pool's oldest live replica (for what-if runs and
        tests; random interruptions are drawn when each spot replica starts)."""
        victim = min(self.by_name[pool].live, key=lambda r: r.id)
        self._schedule(when, _INTERRUPT, victim)

    def _shortage_end(self, now: float) -> float | None:
        at = bisect.bisect_right(self._shortage_starts, now) - 1
        if at >= 0 and now < self.spot.shortages[at][1]:
            return self.spot.shortages[at][1]
        return None

    # --- requests ----------------------------------------------------------------

    def _uniform(self) -> float:
        if self._next_uniform >= len(self._uniforms):
            self._uniforms = self.rng.random(_UNIFORMS).tolist()
            self._next_uniform = 0
        value = self._uniforms[self._next_uniform]
        self._next_uniform += 1
        return value

    def _retry(self, index: int, when: float) -> None:
        if when - self.arrivals[index] < self.worker.client_timeout:
            self.sequence += 1
            heapq.heappush(self.retries, (when, self.sequence, index))

    def attempt(self, index: int, now: float) -> None:
        """One attempt of request `index` at time `now` on a fresh connection."""
        tries = self.tries[index]
        self.tries[index] = tries + 1
        if self.dispatch_mode == SERVICE:
            endpoints = self.endpoints
        else:
            pick = self._uniform()
            endpoints = []
            for edge, pool in self.route:
                if pick < edge:
                    endpoints = pool.ready
                    break
        if not endpoints:
            self._retry(index, now + RETRY_SECONDS)
            return
        replica = endpoints[int(self._uniform() * len(endpoints))]
        pool = replica.pool
        chars = self.chars[index]
        if tries == 0:
            pool.offered_chars += chars
            pool.offered_requests += 1
        service = chars / pool.slot_speed
        slots = replica.slots
        if len(slots) == 1:
            slot, free = 0, slots[0]
        else:
            free = min(slots)
            slot = slots.index(free)
        if free > now:  # every slot busy: the admission test
            queue = replica.queue
            while queue and queue[0] <= now:
                queue.popleft()
            if len(slots) == 1:
                wait = free - now
            else:
                wait = sum(f - now for f in slots if f > now) / len(slots)
            slack = self.budgets[index] - service
            room = self.worker.max_queue - len(queue)
            if room <= 0 or wait > slack:
                after = wait - slack if slack >= 0 else free - now
                if room <= 0:
                    after = max(after, queue[-room] - now)
                pool.refusals += 1
                pool.refused_chars += chars
                self._retry(index, now + self.worker.retry_wait(after, tries))
                return
            queue.append(free)
            start = free
        else:
            start = now
        end = start + service
        slots[slot] = end
        if end > replica.busy_until:
            replica.busy_until = end
        self.finish[index] = end
        if pool.spec.is_spot:
            replica.assigned.append(index)

    def send(self, low: int, high: int, second: int) -> None:
        """The attempts of this second, in time order: first attempts of requests
        `low..high-1` and retries falling due before the next second."""
        retries, arrivals, attempt = self.retries, self.arrivals, self.attempt
        end = second + 1
        if not retries or retries[0][0] >= end:
            for index in range(low, high):
                attempt(index, arrivals[index])
            return
        index = low
        while True:
            due = retries[0][0] if retries else math.inf
            if index < high and arrivals[index] <= due:
                attempt(index, arrivals[index])
                index += 1
            elif due < end:
                when, _, retried = heapq.heappop(retries)
                attempt(retried, when)
            else:
                return

    # --- metrics and the end -----------------------------------------------------

    def counters(self, now: float) -> tuple[float, float, float, float, float]:
        """(offered chars, offered requests, refusals, backlog chars, queue depth), summed
        over the service: what Prometheus scrapes from the workers."""
        chars = requests = refused = backlog = depth = 0.0
        for pool in self.pools:
            chars += pool.offered_chars
            requests += pool.offered_requests
            refused += pool.refusals
            b, d = pool.gauges(now)
            backlog += b
            depth += d
        return chars, requests, refused, backlog, depth

    def close(self, now: float) -> None:
        """Bill everything still running (or draining) up to `now`, or its drain end."""
        for pool in self.pools:
            for replica in list(pool.live):
                self._gone(replica, max(now, replica.busy_until) if replica.state == READY
                           else now)
        for when, _, kind, leaving in sorted(self.events, key=lambda e: (e[0], e[1])):
            if leaving is not None and kind in (_GONE, _KILL) and leaving.state == DRAINING:
                self._gone(leaving, max(when, now) if kind == _GONE else when)

    def counts(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (tuple(p.billed for p in self.pools), tuple(len(p.ready) for p in self.pools))


_READY, _START, _GONE, _INTERRUPT, _KILL, _WAVE = range(6)
