"""Admission that follows the SLO: S synthesis slots, a bounded FIFO queue in front of them,
and a refusal, with the wait to come back after, when waiting would miss the request's SLO.

The rule (the team's admission contract; the simulator models the same):
- R is the characters per second the whole process serves; one slot serves R / S.
- For a request of c characters: the expected wait W is the characters admitted ahead of it
  and not yet synthesised (queued, plus the unfinished part of those in service) divided
  by R, and 0 when a slot is free; its own service time is T = c * S / R; its budget B is
  TTS_MAX_WAIT when set, else TTS_LATENCY_SLO_SECONDS * max(1, c / 100).
- Admit when a slot is free, or when the queue has room and W + T <= B. Otherwise refuse
  with reason `queue_full` or `slo`, and Retry-After = the whole seconds until the backlog
  ahead has drained enough for W + T <= B to hold (at least 1).

R starts from TTS_THROUGHPUT and follows what this process measures: characters served
divided by the time at least one slot was busy, as an exponentially weighted average with
a half-life of HALF_LIFE busy seconds, in which the starting value weighs PRIOR_SECONDS. For
an engine that serialises its work (a ModelScope pipeline, a GPU) that is its throughput at
any load; for one that runs slots in parallel (espeak on several cores) it under-reads at
partial load, which errs on the side of refusing, and is exact when every slot is busy,
the only time the estimate decides anything.

The clock is injected, so the rule is tested with simulated time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

HALF_LIFE = 30.0  # busy seconds after which a measurement weighs half
PRIOR_SECONDS = 5.0  # how many busy seconds the configured throughput is worth
MIN_RATE = 1e-3  # characters per second: a floor, so that nothing divides by zero
QUEUE_FULL, SLO = "queue_full", "slo"


class AdmissionObserver(Protocol):
    def admission_changed(self, queued: int, backlog_chars: float, expected_wait: float,
                          throughput: float) -> None: ...


@dataclass(frozen=True)
class Refusal:
    reason: str  # queue_full | slo
    retry_after: int  # whole seconds, at least 1
    expected_wait: float
    service_time: float
    budget: float


class Ticket:
    """One admitted request: it holds a slot from `wait_for_slot` until `done`."""

    def __init__(self, admission: Admission, chars: int) -> None:
        self.chars = chars
        self._admission = admission
        self._granted = threading.Event()
        self.started: float | None = None
        self._finished = False

    @property
    def granted(self) -> bool:
        return self._granted.is_set()

    def wait_for_slot(self, timeout: float) -> bool:
        """Block until this request has a slot (False if `timeout` passed first)."""
        if self._granted.wait(timeout):
            return True
        return self._admission._abandon(self)

    def done(self, served: bool = True) -> None:
        """Hand the slot on. Idempotent: a stream's close and its end may both call it."""
        self._admission._finish(self, served)


class Admission:
    def __init__(self, slots: int, max_queue: int, throughput: float,
                 latency_slo_seconds: float, max_wait: float | None = None,
                 observer: AdmissionObserver | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = slots
        self.max_queue = max_queue
        self.latency_slo_seconds = latency_slo_seconds
        self.max_wait = max_wait
        self._observer = observer
        self._clock = clock
        self._lock = threading.Lock()
        self._in_service: list[Ticket] = []
        self._queue: deque[Ticket] = deque()
        # The throughput estimate: decayed characters over decayed busy seconds.
        self._chars = throughput * PRIOR_SECONDS
        self._busy = PRIOR_SECONDS
        self._busy_since_sample = 0.0
        self._last = clock()

    # The rule.

    @property
    def throughput(self) -> float:
        with self._lock:
            return self._rate()

    def slo(self, chars: int) -> float:
        """The latency SLO of a request of `chars` characters."""
        return self.latency_slo_seconds * max(1.0, chars / 100)

    def budget(self, chars: int) -> float:
        """What admission lets W + T take: TTS_MAX_WAIT when set, else the SLO."""
        return self.max_wait if self.max_wait is not None else self.slo(chars)

    def expected_wait(self) -> float:
        """W for a request arriving now."""
        with self._lock:
            self._advance()
            return self._wait()

    def try_admit(self, chars: int) -> Ticket | Refusal:
        with self._lock:
            self._advance()
            ticket = Ticket(self, chars)
            if len(self._in_service) < self.slots and not self._queue:
                self._start(ticket)
                self._report()
                return ticket
            rate = self._rate()
            wait = self._backlog() / rate
            service = chars * self.slots / rate
            budget = self.budget(chars)
            room = len(self._queue) < self.max_queue
            if room and wait + service <= budget:
                self._queue.append(ticket)
                self._report()
                return ticket
            retry = max(1, math.ceil(wait - max(0.0, budget - service)))
            return Refusal(QUEUE_FULL if not room else SLO, retry, wait, service, budget)

    # Bookkeeping, under the lock.

    def _rate(self) -> float:
        return max(MIN_RATE, self._chars / self._busy)

    def _advance(self) -> None:
        now = self._clock()
        if self._in_service:
            self._busy_since_sample += max(0.0, now - self._last)
        self._last = now

    def _backlog(self) -> float:
        per_slot = self._rate() / self.slots
        now = self._clock()
        in_service = sum(max(0.0, t.chars - (now - (t.started or now)) * per_slot)
                         for t in self._in_service)
        return in_service + sum(t.chars for t in self._queue)

    def _wait(self) -> float:
        if len(self._in_service) < self.slots and not self._queue:
            return 0.0
        return self._backlog() / self._rate()

    def _start(self, ticket: Ticket) -> None:
        ticket.started = self._clock()
        self._in_service.append(ticket)
        ticket._granted.set()

    def _report(self) -> None:
        if self._observer is not None:
            self._observer.admission_changed(len(self._queue), self._backlog(), self._wait(),
                                             self._rate())

    def _finish(self, ticket: Ticket, served: bool) -> None:
        with self._lock:
            if ticket._finished:
                return
            ticket._finished = True
            self._advance()
            if ticket in self._in_service:
                self._in_service.remove(ticket)
                self._sample(ticket.chars if served else 0)
            elif ticket in self._queue:
                self._queue.remove(ticket)
            while self._queue and len(self._in_service) < self.slots:
                self._start(self._queue.popleft())
            self._report()

    def _abandon(self, ticket: Ticket) -> bool:
        with self._lock:
            if ticket._granted.is_set():
                return True  # granted between the timeout and the lock
            ticket._finished = True
            if ticket in self._queue:
                self._queue.remove(ticket)
            self._report()
            return False

    def _sample(self, chars: int) -> None:
        busy = self._busy_since_sample
        self._busy_since_sample = 0.0
        decay = 0.5 ** (busy / HALF_LIFE)
        self._chars = self._chars * decay + chars
        self._busy = self._busy * decay + busy
