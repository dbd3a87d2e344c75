"""The retry hint (ADMISSION.md, 21:00) as the simulated client and the e2e load generator
read it: retry-after-ms when 0 < v <= 60 s, else Retry-After in whole seconds, at least 1."""

from __future__ import annotations

import pytest

from elastic_tts.simulator.cluster import WorkerModel
from tests.e2e.loadgen import retry_wait


@pytest.mark.parametrize(("headers", "wait"), [
    ({"retry-after-ms": "150", "Retry-After": "1"}, 0.15),
    ({"retry-after-ms": "60000", "Retry-After": "60"}, 60.0),
    ({"retry-after-ms": "60001", "Retry-After": "61"}, 61.0),  # above 60 s: Retry-After
    ({"retry-after-ms": "0", "Retry-After": "2"}, 2.0),
    ({"retry-after-ms": "-5", "Retry-After": "3"}, 3.0),
    ({"retry-after-ms": "soon", "Retry-After": "2"}, 2.0),
    ({"Retry-After": "0"}, 1.0),  # at least 1 s
    ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 1.0),  # a date: not honoured, 1 s
    ({}, 1.0),
])
def test_the_load_generator_reads_the_hint(headers, wait):
    assert retry_wait(headers) == pytest.approx(wait)


@pytest.mark.parametrize(("drain", "attempt", "hinted", "plain"), [
    (0.05, 0, 0.05, 1.0),  # the replica frees up sooner than the base: exactly then
    (2.5, 0, 0.1, 3.0),  # base 100 ms on a first attempt; Retry-After rounds up
    (2.5, 3, 0.8, 3.0),  # 100 ms x 2^3
    (2.5, 6, 2.5, 3.0),  # the exponential passes the drain: the drain
    (0.0014, 0, 0.002, 1.0),  # whole milliseconds, rounded up
    (0.0004, 2, 0.4, 1.0),  # under 1 ms (the estimate behind): the back-off alone
    (90.0, 12, 90.0, 90.0),  # a hint above 60 s is not honoured: Retry-After
])
def test_the_simulated_client_reads_what_the_worker_sends(drain, attempt, hinted, plain):
    assert WorkerModel().retry_wait(drain, attempt) == pytest.approx(hinted)
    assert WorkerModel(retry_hint=False).retry_wait(drain, attempt) == pytest.approx(plain)
