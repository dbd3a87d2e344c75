"""The load generator: an open-loop replay of arrivals against the workers' Service address.

The "Service" is a round-robin over the Ready endpoints the pod runner reports, as
kube-proxy spreads connections over a Service's Ready pods. Like an ingress with
`proxy_next_upstream`, a request that is refused (connection error), or answered 503 by a
draining worker or 429 by a full one, is retried on the next endpoint, a bounded number
of times; the latency is measured from the scheduled arrival to the final answer, so
client-side queueing and retries count against it. A 429 is retried after its
Retry-After until the request's deadline (GIVE_UP_SECONDS), as a client that is told to
come back later does: it honours the worker's `retry-after-ms` when 0 < value <= 60 s, as
openai-python does, else `Retry-After` (at least 1 s), and sends every retry with
`X-Retry-Attempt: n` and the first attempt's `X-Request-Id` (ADMISSION.md), so the worker
counts the request once and grows its hint with the attempt. A request is *lost* when no
attempt got a 200 (and it was not rejected as bad input, which the replay never sends).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import requests

from elastic_tts.simulator.trace import builtin_day, scale, speedup

SAMPLE_TEXT = "今天天气很好我们一起去公园散步然后喝一杯茶再回家休息"
MAX_ATTEMPTS = 8
GIVE_UP_SECONDS = 30.0


@dataclass(frozen=True)
class Arrival:
    at: float  # seconds from the start of the replay
    chars: int


@dataclass
class Result:
    at: float  # time.time() of the scheduled arrival
    chars: int
    status: int | None  # the final answer; None when nothing answered
    latency: float
    attempts: int


@dataclass
class LoadStats:
    """Everything one replay sent and got back."""

    results: list[Result] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # every attempt's status
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, result: Result, answers: Sequence[str]) -> None:
        with self._lock:
            self.results.append(result)
            self.answers.update(answers)

    @property
    def sent(self) -> int:
        return len(self.results)

    @property
    def lost(self) -> list[Result]:
        return [r for r in self.results if r.status != 200]

    def latencies(self) -> list[float]:
        return [r.latency for r in self.results if r.status == 200]

    def offered_rate(self, start: float, end: float) -> float:
        """Characters per second that arrived in [start, end) (time.time())."""
        chars = sum(r.chars for r in self.results if start <= r.at < end)
        return chars / max(end - start, 1e-9)


def text_of(chars: int, index: int) -> str:
    rotated = SAMPLE_TEXT[index % len(SAMPLE_TEXT):] + SAMPLE_TEXT
    return (rotated * (chars // len(SAMPLE_TEXT) + 2))[:chars]


def steps(phases: Sequence[tuple[float, float]], chars_per_request: int) -> list[Arrival]:
    """Evenly spaced arrivals: each phase is (seconds, characters per second)."""
    arrivals: list[Arrival] = []
    start = 0.0
    for seconds, rate in phases:
        if rate > 0:
            gap = chars_per_request / rate
            count = int(seconds / gap)
            arrivals += [Arrival(start + i * gap, chars_per_request) for i in range(count)]
        start += seconds
    return arrivals


def compressed_day(seconds: float, peak_chars_per_second: float,
                   length_divisor: float = 6.5) -> tuple[list[Arrival], str]:
    """The built-in day, replayed in `seconds`, thinned so its busiest minute of text
    offers about `peak_chars_per_second`, texts shortened by `length_divisor`.
    Returns the arrivals and a line stating the transformation."""
    day = speedup(builtin_day(), 86400.0 / seconds)
    chars = np.maximum(1, np.rint(day.chars / length_divisor)).astype(np.int64)
    per_slice = np.bincount(np.minimum(day.times * 60 / seconds, 59).astype(int),
                            weights=chars, minlength=60)
    peak = float(per_slice.max()) / (seconds / 60)
    factor = min(1.0, peak_chars_per_second / peak)
    thinned = scale(day, factor)
    lengths = np.maximum(1, np.rint(thinned.chars / length_divisor)).astype(np.int64)
    arrivals = [Arrival(float(t), int(c)) for t, c in zip(thinned.times, lengths, strict=True)]
    note = (f"built-in day (derived from the Azure LLM inference trace 2023, CC-BY 4.0), "
            f"time compressed x{86400 / seconds:g}, rate x{factor:.4f}, "
            f"text lengths / {length_divisor:g}: {len(arrivals)} requests in {seconds:g} s")
    return arrivals, note


class LoadGenerator:
    def __init__(self, endpoints: Callable[[], list[str]], threads: int = 48) -> None:
        self.endpoints = endpoints
        self.stats = LoadStats()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="load")
        self._next = itertools.count()
        self._local = threading.local()
        self._stop = threading.Event()  # abandon requests in flight (teardown only)
        self._halt = threading.Event()  # send nothing new
        self._thread: threading.Thread | None = None

    def start(self, arrivals: Sequence[Arrival]) -> LoadGenerator:
        self._thread = threading.Thread(target=self._replay, args=(list(arrivals),),
                                        name="load-dispatch", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float) -> LoadStats:
        """Until every arrival is sent and answered (bounded), then stop the threads."""
        if self._thread is not None:
            self._thread.join(timeout)
        # Every submitted request finishes on its own: each gives up after GIVE_UP_SECONDS.
        self._pool.shutdown(wait=True, cancel_futures=False)
        self._stop.set()
        return self.stats

    def finish(self) -> LoadStats:
        """No new arrivals; the requests already sent finish as usual."""
        self._halt.set()
        return self.wait(5)

    def stop(self) -> None:
        """Teardown: abandon everything (what is cut short is not counted as sent)."""
        self._halt.set()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _replay(self, arrivals: list[Arrival]) -> None:
        origin = time.time()
        for index, arrival in enumerate(arrivals):
            delay = origin + arrival.at - time.time()
            if delay > 0 and self._halt.wait(delay):
                return
            self._pool.submit(self._send, origin + arrival.at, arrival.chars, index)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _send(self, scheduled: float, chars: int, index: int) -> None:
        body = {"text": text_of(chars, index)}
        answers: list[str] = []
        status: int | None = None
        attempts = 0
        sent = 0  # attempts that reached a worker, 429s included: X-Retry-Attempt
        request_id = uuid.uuid4().hex
        # Bounded by attempts at a worker, by GIVE_UP_SECONDS, and by the loop's count.
        for _ in range(int(GIVE_UP_SECONDS / 0.2) + MAX_ATTEMPTS):
            if self._stop.is_set():
                return  # torn down: not a result
            if attempts >= MAX_ATTEMPTS or time.time() - scheduled > GIVE_UP_SECONDS:
                break
            endpoints = self.endpoints()
            if not endpoints:  # no Ready endpoint yet: wait, as a client of a Service does
                answers.append("no endpoint")
                time.sleep(0.2)
                continue
            attempts += 1
            url = endpoints[next(self._next) % len(endpoints)]
            headers = {"X-Request-Id": request_id}
            if sent:
                headers["X-Retry-Attempt"] = str(sent)
            sent += 1
            try:
                response = self._session().post(f"{url}/tts", json=body, headers=headers,
                                                timeout=20)
            except requests.RequestException:
                answers.append("connection error")
                continue
            answers.append(str(response.status_code))
            status = response.status_code
            if status == 429:
                # "Come back later": the client does, until it gives up; it is not a
                # failed attempt at a worker, so only the deadline bounds it.
                attempts -= 1
                left = GIVE_UP_SECONDS - (time.time() - scheduled)
                time.sleep(max(0.0, min(retry_wait(response.headers), left)))
                continue
            if status == 503:  # draining: the next endpoint, at once
                continue
            break
        self.stats.add(Result(scheduled, chars, status, time.time() - scheduled, attempts),
                       answers)


def retry_wait(headers: Mapping[str, str]) -> float:
    """Seconds a refused client waits: `retry-after-ms` when it is a number in (0, 60 s],
    else `Retry-After` in whole seconds, at least 1 (a missing or bad one reads as 1)."""
    try:
        hint = float(headers.get("retry-after-ms") or "nan") / 1000
    except ValueError:
        hint = math.nan
    if 0 < hint <= 60:
        return hint
    try:
        return max(1.0, float(int(headers.get("Retry-After") or "1")))
    except ValueError:
        return 1.0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    return float(np.percentile(np.asarray(values), q))
