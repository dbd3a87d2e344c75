"""Bad input at scale against a running worker (gunicorn, espeak): 0 5xx, 0 tracebacks."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.badinput import generate
from tests.e2e.report import REPORT
from tests.e2e.workers import WorkerProcess
from tests.operator.cluster import wait_for


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    process = WorkerProcess("badinput", "cpu", 100_000, tmp_path_factory.mktemp("bad"))
    try:
        wait_for("the worker Ready", process.probe_ready, 60)
        yield process
    finally:
        process.stop()


def send_all(worker: WorkerProcess, count: int, seed: int) -> Counter[str]:
    statuses: Counter[str] = Counter()
    findings = []
    with requests.Session() as session:
        for kind, (method, path, headers, body) in generate(count, seed):
            request = requests.Request(method, worker.url + path, headers=headers, data=body)
            response = session.send(session.prepare_request(request), timeout=30)
            statuses[str(response.status_code)] += 1
            if not 400 <= response.status_code < 500 or b"Traceback" in response.content \
                    or b'File "' in response.content:
                findings.append((kind, method, path, body[:80], response.status_code,
                                 response.content[:200]))
    assert not findings, findings[:5]
    return statuses


def check_log(worker: WorkerProcess) -> None:
    log = worker.log()
    assert "Traceback" not in log, log[-3000:]


def record(count: int, statuses: Counter[str], seconds: float, worker: WorkerProcess) -> None:
    key = f"worker POST/GET with generated bad requests (seeded, {count})"
    REPORT.bad_input[key] = (f"{count} sent in {seconds:.0f}s, answers "
                             f"{dict(sorted(statuses.items()))}, 0 5xx, 0 tracebacks "
                             f"(bodies and the worker's log); worker still Ready: "
                             f"{worker.probe_ready()}")


def test_a_sample_of_bad_requests(worker: WorkerProcess) -> None:
    started = time.monotonic()
    statuses = send_all(worker, 450, seed=1)
    check_log(worker)
    assert worker.probe_ready()
    record(450, statuses, time.monotonic() - started, worker)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ten_thousand_bad_requests(worker: WorkerProcess) -> None:
    started = time.monotonic()
    statuses = send_all(worker, 10_000, seed=2)
    check_log(worker)
    assert sum(statuses.values()) == 10_000
    assert worker.probe_ready()
    record(10_000, statuses, time.monotonic() - started, worker)


def test_generated_kinds_cover_the_api(tmp_path: Path) -> None:
    """The generator itself: every kind appears and every request is well-formed HTTP."""
    kinds = Counter(kind for kind, _ in generate(90, seed=3))
    assert len(kinds) == 9 and min(kinds.values()) == 10
