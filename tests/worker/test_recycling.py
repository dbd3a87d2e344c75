"""Process recycling: the coordinator against a fake arbiter, and a real gunicorn replacing
its processes under load without dropping a request or a probe."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from elastic_tts_dev.fake_engines import GUNICORN_APP
from elastic_tts_dev.servers import Server
from tests.worker.conftest import AppFactory, state_of
from tts_worker.server import recycle
from tts_worker.server.recycle import READY, RECYCLE, RETIRE, RecycleCoordinator, RuntimeDir


class FakeWorker:
    def __init__(self, age: int) -> None:
        self.age = age


class FakeArbiter:
    """gunicorn's arbiter as far as the coordinator sees it: `wakeup` runs what
    manage_workers would (spawn up to num_workers, stop the oldest beyond it)."""

    def __init__(self, pids: list[int]) -> None:
        self.WORKERS = {pid: FakeWorker(i) for i, pid in enumerate(pids)}
        self.num_workers = len(pids)
        self.next_pid = max(pids) + 1
        self.age = len(pids)
        self.stopped: list[int] = []

    def wakeup(self) -> None:
        while len(self.WORKERS) < self.num_workers:
            self.WORKERS[self.next_pid] = FakeWorker(self.age)
            self.next_pid += 1
            self.age += 1
        while len(self.WORKERS) > self.num_workers:
            oldest = min(self.WORKERS, key=lambda pid: self.WORKERS[pid].age)
            del self.WORKERS[oldest]
            self.stopped.append(oldest)


def run_step(coordinator: RecycleCoordinator, runtime: RuntimeDir, arbiter: FakeArbiter,
             answer: str) -> None:
    """One coordinator step, with the new process answering `answer` as it loads."""

    def replacement() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            new = [pid for pid in list(arbiter.WORKERS) if pid >= 100]
            if new:
                runtime.mark(READY, new[0], answer)
                return
            time.sleep(0.01)

    helper = threading.Thread(target=replacement)
    helper.start()
    coordinator.step()
    helper.join()


def test_a_ready_replacement_retires_exactly_the_process_that_asked(tmp_path: Path) -> None:
    arbiter = FakeArbiter([10, 11])  # 10 is the oldest; 11 asks
    arbiter.next_pid = 100
    runtime = RuntimeDir(tmp_path)
    runtime.mark(RECYCLE, 11, "max_requests")
    coordinator = RecycleCoordinator(arbiter, runtime, ready_timeout=5, poll=0.01)
    run_step(coordinator, runtime, arbiter, "ready")
    assert arbiter.stopped == [11]
    assert sorted(arbiter.WORKERS) == [10, 100] and arbiter.num_workers == 2
    assert runtime.has(RETIRE, 11)


def test_a_failed_replacement_is_retired_and_the_old_process_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arbiter = FakeArbiter([10])
    arbiter.next_pid = 100
    runtime = RuntimeDir(tmp_path)
    runtime.mark(RECYCLE, 10, "rss")
    now = [0.0]
    coordinator = RecycleCoordinator(arbiter, runtime, ready_timeout=5, poll=0.01,
                                     clock=lambda: now[0])
    run_step(coordinator, runtime, arbiter, "failed")
    assert arbiter.stopped == [100] and sorted(arbiter.WORKERS) == [10]
    assert arbiter.num_workers == 1
    coordinator.step()  # too soon to try again
    assert sorted(arbiter.WORKERS) == [10]
    now[0] += recycle.RETRY_AFTER
    run_step(coordinator, runtime, arbiter, "ready")
    assert arbiter.stopped == [100, 10] and sorted(arbiter.WORKERS) == [101]


def test_the_policy_counts_requests_with_jitter_and_watches_memory(
        make_app: AppFactory) -> None:
    app = make_app(MAX_REQUESTS=10, MAX_REQUESTS_JITTER=5)
    policy = state_of(app).recycle
    assert 10 <= policy.limit <= 15
    asked: list[str] = []
    policy.request = asked.append
    client = app.test_client()
    for _ in range(policy.limit - 1):
        client.get("/api/voices")
    for _ in range(20):
        client.get("/healthz")  # probes on the API port are not work
    assert asked == []
    client.get("/api/voices")
    client.get("/api/voices")
    assert asked == ["max_requests"]  # asked once
    app = make_app(MAX_RSS_MB=1)
    state_of(app).recycle.request = asked.append
    app.test_client().get("/api/voices")
    assert asked[-1] == "rss"


def sample(text: str, name: str, **labels: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.mark.parametrize("trigger", [
    {"TTS_MAX_REQUESTS": "40", "TTS_MAX_REQUESTS_JITTER": "10"},
    {"TTS_MAX_RSS_MB": "1"},  # every process is past it after its first request
], ids=["max_requests", "rss"])
def test_processes_are_replaced_under_load_with_nothing_dropped(
        tmp_path: Path, trigger: dict[str, str]) -> None:
    # Each replacement takes 0.5 s to load: requests and probes meanwhile go to the old one.
    server = Server.gunicorn(GUNICORN_APP, {
        "TTS_ENGINE": "test-silence", "TTS_FAKE_DELAY": "0.01", "TTS_FAKE_LOAD_SECONDS": "0.5",
        "TTS_CACHE_ENTRIES": "0", "TTS_MAX_CONCURRENCY": "4",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"), **trigger}, tmp_path / "log")
    server.wait_ready()
    probes: list[int | str] = []
    stop = threading.Event()

    def prober() -> None:
        while not stop.is_set():
            try:
                probes.append(requests.get(server.probe_url + "/readyz", timeout=1).status_code)
            except requests.RequestException as exc:
                probes.append(type(exc).__name__)
            time.sleep(0.05)

    def post(i: int) -> int | str:
        try:
            # A fresh connection for each request, as the contract's client makes them.
            return requests.post(server.url + "/tts", json={"text": f"第{i}句"},
                                 timeout=30).status_code
        except requests.RequestException as exc:
            return type(exc).__name__

    watcher = threading.Thread(target=prober)
    watcher.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(post, range(400)))
        time.sleep(1.0)  # let the last recycle finish
    finally:
        stop.set()
        watcher.join()
    metrics = server.probe("/metrics").body.decode()
    log = server.log()
    server.stop()
    assert statuses == [200] * 400, {s: statuses.count(s) for s in set(statuses)}
    assert set(probes) == {200}, {p: probes.count(p) for p in set(probes)}
    reason = "rss" if "TTS_MAX_RSS_MB" in trigger else "max_requests"
    assert sample(metrics, "tts_process_recycles_total", reason=reason) >= 2, log
    assert log.count("is ready; retiring") >= 2, log
    assert "Traceback" not in log


def test_retirement_is_graceful_not_a_drain(tmp_path: Path) -> None:
    """A retired process stops accepting and finishes its work; it never answers 503."""
    server = Server.gunicorn(GUNICORN_APP, {
        "TTS_ENGINE": "test-silence", "TTS_FAKE_DELAY": "0.3", "TTS_MAX_REQUESTS": "5",
        "TTS_MAX_REQUESTS_JITTER": "0", "TTS_CACHE_ENTRIES": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}, tmp_path / "log")
    server.wait_ready()
    try:
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda i: server.post("/tts", {"text": f"慢{i}"}).status,
                                     range(24)))
    finally:
        log = server.log()
        server.stop()
    assert statuses == [200] * 24
    assert "hands over to its replacement" in log and "drain: done" not in log


def rss_of_children(master: int) -> int:
    total = 0
    for child in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        status = Path(f"/proc/{child}/status").read_text()
        total += next(int(line.split()[1]) * 1024 for line in status.splitlines()
                      if line.startswith("VmRSS:"))
    return total


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_rss_stays_within_the_cache_budget_plus_audio_in_flight(tmp_path: Path) -> None:
    """2,000 varied espeak requests under serve's malloc settings (the 10,000-request figure
    is bench/bench_worker_clients.py's): RSS ends within the cache budget plus 32 MiB of
    its start, and never passes the budget plus 96 MiB."""
    budget = 16 * 2**20
    from elastic_tts_dev.processes import free_port

    port, probe_port = free_port(), free_port()
    script = Path(sys.executable).with_name("elastic-tts-worker")
    server = Server([str(script), "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--probe-port", str(probe_port), "--engine", "espeak"],
                    {"TTS_CACHE_BYTES": str(budget),
                     "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}, port,
                    tmp_path / "log", probe_port)
    try:
        server.wait_ready()
        start = rss_of_children(server.process.pid)
        peak = start

        def post(i: int) -> None:
            text = ("今天天气很好，我们去公园散步吧。" * 20)[: 20 + (i * 37) % 280] + str(i)
            body = {"text": text, "format": ("wav", "mp3", "pcm")[i % 3], "stream": i % 4 == 0}
            requests.post(server.url + "/tts", json=body, timeout=60)

        with ThreadPoolExecutor(4) as pool:
            for batch in range(20):
                list(pool.map(post, range(batch * 100, batch * 100 + 100)))
                peak = max(peak, rss_of_children(server.process.pid))
        end = rss_of_children(server.process.pid)
    finally:
        server.stop()
    mib = 2**20
    assert end - start <= budget + 32 * mib, (start / mib, end / mib)
    assert peak - start <= budget + 96 * mib, (start / mib, peak / mib)
