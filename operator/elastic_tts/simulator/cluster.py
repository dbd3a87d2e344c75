"""The simulated cluster: replicas per pool, their lifecycle, dispatch, queues and billing.

Replica lifecycle (times in seconds from the start of the trace):

    requested --(spot shortage: Pending until it ends)--> starting --cold start--> ready
    ready --scale-down--> draining (no new requests; finishes what it accepted) --> gone
    spot: interruption notice --> draining, replacement requested --notice--> killed

Each replica has `concurrency` slots; a slot serves one request at throughput/concurrency
characters/s, so a request's latency is its wait for a slot plus chars / that speed.
Requests wait in the replica's own FIFO queue, as they do behind a Kubernetes Service.

Dispatch, chosen per run:
- round-robin: a plain Service over every pool; each ready replica in turn, whatever
  its speed.
- capacity-weighted: an HTTPRoute whose backend weights follow each pool's ready
  capacity (smooth weighted round-robin, deterministic), then within the pool the
  replica whose slot frees first (the gateway's least-request balancing).

Requests that arrive while nothing is ready wait at the front and go out as soon as a
replica is ready. Requests on a killed spot replica are sent again (latency still counts
from their arrival). Billing runs from the request until the replica is gone.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from elastic_tts.policy.model import PoolState
from elastic_tts.policy.spec import Pool
from elastic_tts.simulator.trace import FloatArray, IntArray

PENDING, STARTING, READY, DRAINING, GONE = range(5)
ROUND_ROBIN = "round-robin"
CAPACITY_WEIGHTED = "capacity-weighted"
DISPATCHES = (CAPACITY_WEIGHTED, ROUND_ROBIN)
_SLOT_BITS = 1 << 20  # heap keys: replica id * this + slot index


@dataclass(frozen=True)
class SpotConditions:
    interruptions_per_hour: float = 0.05  # Poisson rate per running spot replica
    notice_seconds: float = 120.0  # AWS gives 2 minutes; GCP 30 s
    shortages: tuple[tuple[float, float], ...] = ()  # (start, end): no spot capacity


class Replica:
    __slots__ = ("accepting", "assigned", "busy_until", "id", "pool", "ready_at", "requested",
                 "slots", "state")

    def __init__(self, rid: int, pool: PoolRuntime, requested: float) -> None:
        self.id = rid
        self.pool = pool
        self.requested = requested
        self.ready_at = math.inf
        self.state = STARTING
        self.accepting = False
        self.slots: list[float] = []
        self.assigned: list[int] = []  # request indices, kept only for spot replicas
        self.busy_until = requested


class PoolRuntime:
    def __init__(self, index: int, pool: Pool) -> None:
        self.index = index
        self.spec = pool
        self.slot_speed = pool.throughput / pool.concurrency
        self.price_per_second = pool.cost_per_hour / 3600.0
        self.live: list[Replica] = []  # asked for and not leaving: pending, starting, ready
        self.ready: list[Replica] = []
        self.billed = 0  # replicas costing money now (live + draining)
        self.heap: list[tuple[float, int, Replica]] = []
        self.interrupted = 0  # since the controller last looked
        self.served = 0  # requests dispatched to this pool
        self.replica_seconds = 0.0

    def state(self, now: float) -> PoolState:
        pending = [r for r in self.live if r.state == PENDING]
        oldest = min((r.requested for r in pending), default=now)
        return PoolState(current=len(self.live), ready=len(self.ready), pending=len(pending),
                         pending_seconds=now - oldest, interrupted=self.interrupted)


class Cluster:
    def __init__(self, pools: Mapping[str, Pool], arrivals: FloatArray, chars: IntArray,
                 dispatch: str, spot: SpotConditions, seed: int, instant: bool = False) -> None:
        self.pools = [PoolRuntime(i, p) for i, p in enumerate(pools.values())]
        self.by_name = {p.spec.name: p for p in self.pools}
        self.arrivals = arrivals
        self.chars = chars.astype(np.float64).tolist()
        self.finish = np.full(arrivals.size, math.inf)
        self.dispatch_mode = dispatch
        self.spot = spot
        self.instant = instant  # the oracle: ready at once, never short, never interrupted
        self.rng = np.random.default_rng(seed)
        self.events: list[tuple[float, int, int, Replica]] = []
        self.sequence = 0
        self.held: list[int] = []
        self.rr: list[Replica] = []
        self.rr_next = 0
        self.weights = [0.0] * len(self.pools)
        self.credit = [0.0] * len(self.pools)
        self.cost = 0.0
        self.changed = True
        self._shortage_starts = [s for s, _ in spot.shortages]

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
            self._remove(pool, len(pool.live) - target, now)

    def _create(self, pool: PoolRuntime, now: float) -> None:
        self.sequence += 1
        replica = Replica(self.sequence, pool, now)
        pool.live.append(replica)
        pool.billed += 1
        self.changed = True
        if self.instant:
            self._ready(replica, now)
        elif pool.spec.is_spot and self._shortage_end(now) is not None:
            replica.state = PENDING
            self._schedule(self._shortage_end(now) or now, _START, replica)
        else:
            self._start(replica, now)

    def _start(self, replica: Replica, now: float) -> None:
        replica.state = STARTING
        self._schedule(now + replica.pool.spec.cold_start_seconds, _READY, replica)
        rate = self.spot.interruptions_per_hour
        if replica.pool.spec.is_spot and rate > 0:
            after = math.floor(self.rng.exponential(3600.0 / rate)) + 1
            self._schedule(now + after, _INTERRUPT, replica)

    def _remove(self, pool: PoolRuntime, count: int, now: float) -> None:
        # Like a ReplicaSet: unscheduled and not-ready pods go first, newest first.
        order = sorted(pool.live, key=lambda r: (r.state == READY, -r.requested, -r.id))
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
            replica.accepting = False
            pool.ready.remove(replica)
            self._routing_changed()
            self._schedule(max(now, replica.busy_until), _GONE, replica)
        elif replica.state in (PENDING, STARTING):
            self._gone(replica, now)

    def _gone(self, replica: Replica, now: float) -> None:
        if replica.state == GONE:
            return
        replica.state = GONE
        pool = replica.pool
        pool.billed -= 1
        seconds = now - replica.requested
        pool.replica_seconds += seconds
        self.cost += seconds * pool.price_per_second
        self.changed = True

    # --- events ------------------------------------------------------------------

    def _schedule(self, when: float, kind: int, replica: Replica) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (when, self.sequence, kind, replica))

    def next_event(self) -> float:
        return self.events[0][0] if self.events else math.inf

    def run_events(self, until: float) -> None:
        """Handle every event before `until` (the end of this step)."""
        while self.events and self.events[0][0] < until:
            when, _, kind, replica = heapq.heappop(self.events)
            if kind == _READY and replica.state == STARTING:
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
        replica.accepting = True
        replica.ready_at = now
        replica.busy_until = now
        replica.slots = [now] * pool.spec.concurrency
        pool.ready.append(replica)
        for slot in range(pool.spec.concurrency):
            heapq.heappush(pool.heap, (now, replica.id * _SLOT_BITS + slot, replica))
        self._routing_changed()
        self.changed = True
        if self.held:
            waiting, self.held = self.held, []
            for index in waiting:
                self.dispatch(index, now)

    def _interrupt(self, replica: Replica, now: float) -> None:
        pool = replica.pool
        pool.interrupted += 1
        was_live = replica in pool.live
        self._leave(replica, now)
        if was_live:
            self._create(pool, now)  # the Deployment replaces the lost pod at once
        if self.spot.notice_seconds > 0:
            self._schedule(now + self.spot.notice_seconds, _KILL, replica)
        else:
            self._kill(replica, now)

    def _kill(self, replica: Replica, now: float) -> None:
        """The node is gone: requests it had not finished are sent again."""
        self._gone(replica, now)
        slowest = 500.0 / replica.pool.slot_speed + 1.0
        lost = []
        for index in reversed(replica.assigned):
            end = self.finish[index]
            if end > now:
                lost.append(index)
            elif end < now - slowest:
                break
        for index in sorted(lost):
            self.finish[index] = math.inf
            self.dispatch(index, now)

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

    def _routing_changed(self) -> None:
        self.rr = [r for p in self.pools for r in p.ready]
        self.weights = [len(p.ready) * p.spec.throughput for p in self.pools]

    def dispatch(self, index: int, now: float) -> None:
        """Send request `index` at time `now` (its arrival, or later if it waited)."""
        if not self.rr:
            self.held.append(index)
            return
        if self.dispatch_mode == ROUND_ROBIN:
            replica = self.rr[self.rr_next % len(self.rr)]
            self.rr_next += 1
            slots = replica.slots
            slot = slots.index(min(slots)) if len(slots) > 1 else 0
            free = slots[slot]
            start = free if free > now else now
            end = start + self.chars[index] / replica.pool.slot_speed
            slots[slot] = end
        else:
            pool = self._weighted_pool()
            heap = pool.heap
            while True:
                free, key, replica = heap[0]
                if replica.accepting and replica.slots[key % _SLOT_BITS] == free:
                    break
                heapq.heappop(heap)  # a slot of a replica that left: drop it
            start = free if free > now else now
            end = start + self.chars[index] / pool.slot_speed
            replica.slots[key % _SLOT_BITS] = end
            heapq.heapreplace(heap, (end, key, replica))
        if end > replica.busy_until:
            replica.busy_until = end
        self.finish[index] = end
        replica.pool.served += 1
        if replica.pool.spec.is_spot:
            replica.assigned.append(index)

    def _weighted_pool(self) -> PoolRuntime:
        """Smooth weighted round-robin over pools by ready capacity (as nginx does)."""
        weights, credit = self.weights, self.credit
        best, best_credit, total = 0, -math.inf, 0.0
        for i, weight in enumerate(weights):
            if weight <= 0:
                continue
            total += weight
            credit[i] += weight
            if credit[i] > best_credit:
                best, best_credit = i, credit[i]
        credit[best] -= total
        return self.pools[best]

    # --- the end -----------------------------------------------------------------

    def close(self, now: float) -> None:
        """Bill everything still running (or draining) up to `now`, or its drain end."""
        for pool in self.pools:
            for replica in list(pool.live):
                self._gone(replica, max(now, replica.busy_until) if replica.state == READY
                           else now)
        for when, _, kind, replica in sorted(self.events):
            if kind in (_GONE, _KILL) and replica.state == DRAINING:
                self._gone(replica, max(when, now) if kind == _GONE else when)

    def counts(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (tuple(p.billed for p in self.pools), tuple(len(p.ready) for p in self.pools))


_READY, _START, _GONE, _INTERRUPT, _KILL = range(5)
