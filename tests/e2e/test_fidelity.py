"""What the fidelity check measures from a run, on hand-made runs (no cluster): service
times on a one-slot FIFO replica, throughput per pool, the cold start and Pending of each
new replica from the decision that asked for it, and the replay behind a given Ready
timeline."""

from __future__ import annotations

import pytest

from tests.e2e.fidelity import (
    Measured,
    cold_starts,
    pending_times,
    pool_throughput,
    service_times,
    simulate_open,
)
from tests.e2e.loadgen import Attempt
from tests.e2e.loop import Tick
from tests.e2e.specs import e2e_service


def tick(at: float, **replicas: int) -> Tick:
    return Tick(at, 0.0, dict(replicas), {}, {}, {})


def test_service_times_on_a_one_slot_fifo_replica() -> None:
    attempts = [
        Attempt(0, 10.0, 10.6, "http://a", "200"),  # idle: 0.6 s
        Attempt(1, 10.2, 11.2, "http://a", "200"),  # queued behind 0: 11.2 - 10.6
        Attempt(2, 10.3, 10.31, "http://a", "429"),  # refused: takes no slot
        Attempt(3, 12.0, 12.5, "http://a", "200"),  # idle again
        Attempt(4, 10.0, 10.7, "http://b", "200"),
    ]
    served = service_times(attempts)
    assert served["http://a"] == [(0, pytest.approx(0.6)), (1, pytest.approx(0.6)),
                                  (3, pytest.approx(0.5))]
    assert served["http://b"] == [(4, pytest.approx(0.7))]
    chars = {0: 20, 1: 20, 2: 20, 3: 10, 4: 35}
    throughput = pool_throughput(attempts, chars, {"http://a": "cpu", "http://b": "gpu"}.get)
    assert throughput == {"cpu": pytest.approx(50 / 1.7), "gpu": pytest.approx(50.0)}


def test_cold_start_and_pending_run_from_the_decision_to_each_new_replica() -> None:
    origin = 100.0
    ticks = [tick(100.0, cpu=1), tick(102.0, cpu=3), tick(104.0, cpu=3), tick(106.0, cpu=2)]
    ready = [(0.0, {"cpu": 1}), (8.0, {"cpu": 2}), (9.5, {"cpu": 3}), (12.0, {"cpu": 2})]
    assert cold_starts(ticks, ready, origin) == {"cpu": [6.0, 7.5]}
    running = [(97.0, "cpu"), (103.0, "cpu"), (103.5, "gpu"), (104.0, "cpu")]
    assert pending_times(ticks, running, origin) == {"cpu": [1.0, 2.0]}


def test_the_replay_behind_a_ready_timeline() -> None:
    # one cpu replica at 40 chars/s, then a second at 1 s: 20-character texts take 0.5 s
    measured = Measured(firsts=[0.0, 0.1, 2.0], chars=[20, 20, 20],
                        latencies=[0.5, 0.9, 0.5],
                        throughput={"cpu": 40.0, "spot": 40.0, "gpu": 40.0},
                        cold_start=dict.fromkeys(("cpu", "spot", "gpu"), 8.0),
                        pending=dict.fromkeys(("cpu", "spot", "gpu"), 0.0),
                        ready=[(-1.0, {"cpu": 1}), (1.0, {"cpu": 2})])
    predicted = simulate_open(e2e_service("step", "http://prometheus"), measured, seeds=3)
    # the second waits 0.4 s behind the first (the only endpoint then); the third finds
    # two idle replicas: latencies 0.5, 0.9, 0.5 whatever the seed
    assert predicted.p50 == pytest.approx(0.5)
    assert predicted.p95 == pytest.approx(0.9)  # of the nine latencies of three seeds
    assert predicted.p95_band == pytest.approx((0.86, 0.86))  # of each seed's three
