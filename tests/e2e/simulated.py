"""The e2e's TTSService and load profile through the simulator, with the same admission
model and client as every benchmark run, so that the simulator's client-side latency
can be set beside what the e2e's load generator measures.

The e2e runs Prometheus with a 1 s scrape and the operator with `--rate-windows 4s,8s
--burst-window 2s`, so the simulated controller sees the same lag. This replays the
profile as a benchmark run does (the declared throughput and cold start, counters primed
with the profile's own rate); tests/e2e/fidelity.py replays a measured run with what that
run measured instead, and checks the latency against its clients'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from elastic_tts.policy import parse_spec
from elastic_tts.simulator.cluster import SERVICE, SpotConditions
from elastic_tts.simulator.engine import RunResult, simulate
from elastic_tts.simulator.policies import ElasticTTS
from elastic_tts.simulator.prometheus import MetricsModel
from elastic_tts.simulator.trace import make_trace
from tests.e2e.loadgen import Arrival

E2E_METRICS = MetricsModel(scrape_seconds=1, short_window=4, long_window=8, burst_window=2)
START = 1_795_392_000.0


def simulate_profile(resource: Mapping[str, Any], arrivals: Sequence[Arrival],
                     seed: int = 1) -> RunResult:
    spec = parse_spec(dict(resource))
    trace = make_trace("e2e profile", np.array([a.at for a in arrivals], dtype=np.float64),
                       np.array([a.chars for a in arrivals], dtype=np.int64), START)
    return simulate(trace, spec, ElasticTTS(spec), dispatch=SERVICE,
                    spot=SpotConditions(interruptions_per_hour=0.0), seed=seed,
                    metrics=E2E_METRICS)

