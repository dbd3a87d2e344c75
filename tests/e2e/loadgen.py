"""The load generator: an open-loop replay of arrivals against a TTSService's Service,
behaving as the client of the admission contract (/work/notes/ADMISSION.md, "The client
every test and the simulator model"):

- each attempt goes on a fresh connection to one Ready endpoint of the Service, picked at
  random, as kube-proxy picks one per connection; the endpoints are the Service's real
  EndpointSlices, written by the EndpointSlice controller from the pods' Ready condition
  (`ServiceEndpoints`), reached at their loopback twins (`kubelet.reach`);
- on 429 or 503 it waits ``retry-after-ms`` when the answer has one between 0 and 60 s
  (as the openai client does), else Retry-After (at least 1 s), and retries, sending
  ``X-Retry-Attempt: n`` and the same ``X-Request-Id``; a refused connection (an endpoint
  that just went) is retried after half a second, and with no Ready endpoint at all it
  waits and tries again;
- it gives up 60 s after its first attempt; a request never served is *lost*;
- its latency runs from the first attempt to the final answer (`Result.latency`), and
  `Result.delay` is how late the first attempt was against the replay's schedule (the
  generator's own lag, which a sound run keeps near zero).
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pykube
import requests

from elastic_tts.simulator.trace import builtin_day, scale, speedup
from tests.e2e.kubelet import reach

SAMPLE_TEXT = "今天天气很好我们一起去公园散步然后喝一杯茶再回家休息"
GIVE_UP_SECONDS = 60.0
REFUSED_PAUSE = 0.5  # after a refused connection
NO_ENDPOINT_PAUSE = 0.2
ENDPOINTS_EVERY = 0.2  # seconds between reads of the EndpointSlices
# Requests in flight at most: each holds a thread while it waits for its answer or its
# retry. An open-loop replay must never wait for a thread before a first attempt (with 64,
# a queue of 30 s at 5 requests/s held every thread and delayed arrivals by up to 7 s);
# the executor starts threads only as they are needed.
MAX_IN_FLIGHT = 1024


class ServiceEndpoints:
    """The Ready endpoints of one Service, from its EndpointSlices, refreshed in the
    background every ENDPOINTS_EVERY seconds."""

    def __init__(self, api: pykube.HTTPClient, namespace: str, service: str,
                 port_name: str = "http") -> None:
        self.api = api
        self.namespace = namespace
        self.service = service
        self.port_name = port_name
        self._urls: list[str] = []
        # (time.time(), the Ready endpoints) at the first read and at every change: the
        # Ready timeline the client saw, which the simulator's replay is fed.
        self.history: list[tuple[float, tuple[str, ...]]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"endpoints-{service}",
                                        daemon=True)

    def start(self) -> ServiceEndpoints:
        self.refresh()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def __call__(self) -> list[str]:
        return list(self._urls)

    def refresh(self) -> None:
        answer = self.api.request(
            "GET", url="endpointslices", version="discovery.k8s.io/v1",
            namespace=self.namespace, timeout=10,
            params={"labelSelector": f"kubernetes.io/service-name={self.service}"})
        answer.raise_for_status()
        urls = []
        for piece in answer.json().get("items") or []:
            ports = [p.get("port") for p in piece.get("ports") or []
                     if p.get("name") == self.port_name]
            for endpoint in piece.get("endpoints") or []:
                if not (endpoint.get("conditions") or {}).get("ready"):
                    continue
                urls += [f"http://{reach(address)}:{port}"
                         for address in endpoint.get("addresses") or [] for port in ports]
        self._urls = sorted(urls)
        if not self.history or self.history[-1][1] != tuple(self._urls):
            self.history.append((time.time(), tuple(self._urls)))

    def _loop(self) -> None:
        for _ in range(10**7):  # bounded; stopped at teardown
            if self._stop.wait(ENDPOINTS_EVERY):
                return
            try:
                self.refresh()
            except Exception as exc:  # keep the last good list, as kube-proxy does
                self.errors.append(repr(exc)[:200])


@dataclass(frozen=True)
class Arrival:
    at: float  # seconds from the start of the replay
    chars: int


@dataclass
class Result:
    at: float  # time.time() of the scheduled arrival
    chars: int
    status: int | None  # the final answer; None when nothing answered
    latency: float  # seconds from the first attempt to the final answer
    attempts: int  # connections made (retries included)
    delay: float = 0.0  # seconds from the scheduled arrival to the first attempt
    request: int = -1  # the arrival's index in the replay (`Attempt.request`)


@dataclass(frozen=True)
class Attempt:
    """One connection of one request: where it went and what came back."""

    request: int  # the arrival's index in the replay
    sent: float  # time.time() when the connection was opened
    answered: float  # time.time() when the answer (or the error) came
    url: str
    status: str  # the HTTP status, or "connection error"


@dataclass
class LoadStats:
    """Everything one replay sent and got back."""

    results: list[Result] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # every attempt's status
    attempts: list[Attempt] = field(default_factory=list)  # every connection made
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, result: Result, answers: Sequence[str],
            attempts: Sequence[Attempt] = ()) -> None:
        with self._lock:
            self.results.append(result)
            self.answers.update(answers)
            self.attempts += attempts

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
    def __init__(self, endpoints: ServiceEndpoints, threads: int = MAX_IN_FLIGHT) -> None:
        self.endpoints = endpoints
        self.stats = LoadStats()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="load")
        self._stop = threading.Event()  # abandon requests in flight (teardown only)
        self._halt = threading.Event()  # send nothing new
        self._thread: threading.Thread | None = None
        self._random = random.Random(7)
        self._random_lock = threading.Lock()

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

    def _pick(self, urls: list[str]) -> str:
        with self._random_lock:
            return self._random.choice(urls)

    def _send(self, scheduled: float, chars: int, index: int) -> None:
        body = {"text": text_of(chars, index)}
        request_id = uuid.uuid4().hex
        answers: list[str] = []
        made: list[Attempt] = []
        status: int | None = None
        first = time.time()
        retries = 0
        # Bounded by GIVE_UP_SECONDS and by the loop's count.
        for _ in range(int(GIVE_UP_SECONDS / NO_ENDPOINT_PAUSE) + 10):
            if self._stop.is_set():
                return  # torn down: not a result
            if time.time() - first > GIVE_UP_SECONDS:
                break
            urls = self.endpoints()
            if not urls:  # a Service without Ready endpoints refuses the connection
                answers.append("no endpoint")
                time.sleep(NO_ENDPOINT_PAUSE)
                continue
            headers = {"X-Request-Id": request_id, "Connection": "close"}
            if retries:
                headers["X-Retry-Attempt"] = str(retries)
            url = self._pick(urls)
            sent = time.time()
            try:  # a fresh connection per attempt: no session
                response = requests.post(f"{url}/tts", json=body,
                                         headers=headers, timeout=GIVE_UP_SECONDS)
            except requests.RequestException:
                answers.append("connection error")
                made.append(Attempt(index, sent, time.time(), url, "connection error"))
                status = None
                retries += 1
                time.sleep(REFUSED_PAUSE)
                continue
            answers.append(str(response.status_code))
            made.append(Attempt(index, sent, time.time(), url, str(response.status_code)))
            status = response.status_code
            if status in (429, 503):  # "come back later"
                retries += 1
                time.sleep(retry_wait(response.headers))
                continue
            break
        self.stats.add(Result(scheduled, chars, status, time.time() - first,
                              len([a for a in answers if a != "no endpoint"]),
                              first - scheduled, index), answers, made)


def retry_wait(headers: Mapping[str, str]) -> float:
    """Seconds to wait before the retry: ``retry-after-ms`` when 0 < it <= 60 s, else
    ``Retry-After`` (whole seconds), at least 1 s."""
    try:
        hint = float(headers.get("retry-after-ms") or "nan") / 1000.0
    except ValueError:
        hint = math.nan
    if 0 < hint <= 60:
        return hint
    try:
        seconds = float(headers.get("Retry-After") or 1)
    except ValueError:
        return 1.0
    return max(1.0, seconds) if math.isfinite(seconds) else 1.0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    return float(np.percentile(np.asarray(values), q))
