"""The e2e's load step, spec and Prometheus settings replayed through the simulator."""

from __future__ import annotations

import numpy as np

from elastic_tts.policy import parse_spec
from elastic_tts.simulator.engine import slo_limits
from tests.e2e.loadgen import steps
from tests.e2e.simulated import simulate_profile
from tests.e2e.specs import e2e_service
from tests.e2e.test_loop import CHARS, FALL_SECONDS, HIGH, HIGH_SECONDS, LOW, LOW_SECONDS


def test_the_e2e_load_step_replays_through_the_simulator() -> None:
    resource = e2e_service("step", "http://prometheus:9090")
    arrivals = steps([(LOW_SECONDS, LOW), (HIGH_SECONDS, HIGH), (FALL_SECONDS, LOW)], CHARS)
    result = simulate_profile(resource, arrivals)
    spec = parse_spec(resource)
    limits = slo_limits(spec, np.array([a.chars for a in arrivals], dtype=np.float64))
    assert np.isfinite(result.latency).all()  # every client got its answer
    # a 20-character text takes 0.5 s at 40 chars/s: the median is about that
    assert 0.5 <= float(np.median(result.latency)) < 1.5
    assert float(np.mean(result.latency <= limits)) > 0.8
    index = {name: i for i, name in enumerate(result.pools)}
    peak = result.timeline.billed.sum(axis=1).max()
    assert peak >= 3  # the step to 100 chars/s needs more than the one CPU replica
    assert result.timeline.billed[-1].sum() <= peak
    assert result.timeline.billed[-1, index["cpu"]] >= 1
