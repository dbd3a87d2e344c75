"""Fed the same observed load, does the engine decide what the simulator predicts?

Each recorded tick carries what the operator saw (the demand it computed from
Prometheus, each pool's current/ready/pending) and what it decided. The simulator's
`ElasticTTS` policy is fed those observations, tick by tick, with its own memory carried
as the simulator carries it, and its prediction is compared with the operator's decision.
The load inputs are those the operator wrote to status.engine.observation (the rates,
burst rate, requests rate, backlog and refused share); a status without them (an older
operator) gives both rates as the observed demand times the target utilisation.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elastic_tts.policy import PoolState, parse_spec
from elastic_tts.simulator.policies import ElasticTTS, View
from tests.e2e.loop import Tick


@dataclass(frozen=True)
class Disagreement:
    at: float
    operator: Mapping[str, int]
    simulator: Mapping[str, int]


def pool_states(pools: Mapping[str, Mapping[str, Any]]) -> dict[str, PoolState]:
    return {name: PoolState(current=int(p.get("current", 0)), ready=int(p.get("ready", 0)),
                            pending=int(p.get("pending", 0)),
                            pending_seconds=float(p.get("pendingSeconds", 0.0)))
            for name, p in pools.items()}


def gaps(ticks: Sequence[Tick]) -> list[float]:
    """Ticks whose predecessor the recorder did not see: its time is missing from the
    tick's own memory samples (which keep every tick of the stabilisation window)."""
    missing = []
    for before, tick in itertools.pairwise(ticks):
        times = [round(float(t), 3) for t, _ in tick.memory.get("samples", [])]
        if round(before.at, 3) not in times:
            missing.append(tick.at)
    return missing


def replay(raw_spec: Mapping[str, Any], ticks: Sequence[Tick]) -> list[Disagreement]:
    spec = parse_spec(dict(raw_spec))
    policy = ElasticTTS(spec)
    start = ticks[0].at if ticks else 0.0
    disagreements = []
    for tick in ticks:
        seen = (tick.status.get("engine") or {}).get("observation")
        if seen and "shortRate" in seen and "longRate" in seen:
            # A signal the operator did not observe is absent (see reconcile.tick.observed).
            view = View(now=tick.at - start, epoch=tick.at, short_rate=seen["shortRate"],
                        long_rate=seen["longRate"], pools=pool_states(tick.pools),
                        burst_rate=seen.get("burstRate"),
                        requests_rate=seen.get("requestsRate"),
                        backlog_characters=seen.get("backlogCharacters"),
                        refused_share=seen.get("refusedShare"))
        else:
            rate = tick.demand * spec.scaling.target_utilization
            view = View(now=tick.at - start, epoch=tick.at, short_rate=rate, long_rate=rate,
                        pools=pool_states(tick.pools))
        predicted = policy.decide(view)
        if predicted != tick.replicas:
            disagreements.append(Disagreement(tick.at, tick.replicas, predicted))
    return disagreements
