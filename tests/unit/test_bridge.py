"""The bridge (policy/bridge.py): a pool kept out of the mix covers a burst's wait for the
pools that count, when it starts faster, and is shed once they are Ready. Table-driven."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from elastic_tts.policy import Memory, Observation, PoolState, decide
from elastic_tts.policy.decide import capacity_per_replica, kept_out
from tests.unit.specs import CPU, GPU, WEIGHTED, build

T0 = 1_795_000_000.0


def gpu_and_cpu(cpu_cold: float = 30.0, routing: dict[str, Any] | None = None,
                cpu_max: int = 100) -> Any:
    # At the 5 s SLO the CPU pool (3.8 s per 100 characters) is kept out of mixes.
    return build({"pools": {"gpu": dict(GPU, maxReplicas=40),
                            "cpu": dict(CPU, maxReplicas=cpu_max, minReplicas=1,
                                        coldStartSeconds=cpu_cold)},
                  "scaling": {"latencySLOSeconds": 5.0},
                  "routing": routing if routing is not None else dict(WEIGHTED)})


RUNNING = {"gpu": PoolState(current=2, ready=2), "cpu": PoolState(current=1, ready=1)}


# Refusals observed and the utilisation calibrated (23 %, GPU's at 2 % refused): CPU alone,
# sized for its own lower utilisation, then costs more than the GPU mix, as it does with
# the default pools.
CALIBRATED = Memory(utilisation=0.23)
# ... and short of a burst for three ticks before this one, 45 s: as long as the CPU
# pool's cold start and a tick.
CALIBRATED_IN_BURST = Memory(utilisation=0.23, short_since=T0 - 45)


def crowd(spec: Any, pools: dict[str, PoolState] | None = None, load: float = 50.0,
          burst: float = 600.0, memory: Memory | None = None, now: float = T0) -> Any:
    # the ~1 m rate up with the burst, the ~5 m one still at the load
    observation = Observation(max(load, burst), load, pools or RUNNING, burst_rate=burst,
                              requests_rate=load / 170.0, refused_share=0.0)
    return decide(spec, observation, memory or CALIBRATED_IN_BURST, now)


def test_the_default_cpu_pool_is_kept_out_at_a_5_s_slo() -> None:
    assert set(kept_out(gpu_and_cpu())) == {"cpu"}


@pytest.mark.parametrize("routing", [dict(WEIGHTED), {"enabled": False}],
                         ids=["HTTPRoute", "plain Service"])
def test_a_panic_orders_the_kept_out_pool_for_the_shortfall(routing: dict[str, Any]) -> None:
    spec = gpu_and_cpu(routing=routing)
    hot = crowd(spec)
    assert "panic" in hot.reason
    # what the Ready GPU replicas (2 x 83.3) leave of the burst's demand, at CPU's speed
    ready = 2 * capacity_per_replica(spec, spec.pools["gpu"])
    wanted = hot.replicas["cpu"] * capacity_per_replica(spec, spec.pools["cpu"])
    assert wanted >= 600.0 / hot.memory.utilisation - ready - 1e-6
    assert hot.replicas["gpu"] > 2  # the pool that counts still grows
    assert "cpu bridging" in hot.reason and "until gpu is Ready (30s cold start against " \
        "120s" in hot.reason


@pytest.mark.parametrize(
    ("label", "spec", "burst", "bridged"),
    [
        ("a kept-out pool that starts no faster is no bridge", gpu_and_cpu(cpu_cold=120.0),
         600.0, False),
        ("no panic: the mix scales as it does", gpu_and_cpu(), 60.0, False),
        ("the ceiling bounds the bridge", gpu_and_cpu(cpu_max=5), 600.0, True),
    ],
)
def test_when_there_is_no_bridge(label: str, spec: Any, burst: float, bridged: bool) -> None:
    decision = crowd(spec, burst=burst)
    assert ("cpu bridging" in decision.reason) is bridged, label
    assert decision.replicas["cpu"] <= spec.pools["cpu"].max_replicas
    if not bridged:
        assert decision.replicas["cpu"] == 1, label  # its floor


def test_a_bridge_is_shed_once_the_pools_that_count_are_ready() -> None:
    spec = gpu_and_cpu()
    hot = crowd(spec)
    ordered = hot.replicas["cpu"]
    assert ordered > 1
    # GPU Ready for the burst, the CPU bridge too; the burst goes on but no longer panics
    covered = {"gpu": PoolState(current=hot.replicas["gpu"] * 4, ready=hot.replicas["gpu"] * 4),
               "cpu": PoolState(current=ordered, ready=ordered)}
    later = crowd(spec, covered, load=600.0, memory=hot.memory, now=T0 + 180)
    assert "panic" not in later.reason and "bridging" not in later.reason
    assert later.replicas["cpu"] == 1


def test_a_burst_onto_nothing_ready_is_bridged_and_a_steady_start_is_not() -> None:
    # (a steady start whose first replicas are Ready panics, and is not bridged either:
    # test_properties' constant load never oscillates)
    spec = gpu_and_cpu()
    idle = {"gpu": PoolState(), "cpu": PoolState(current=1, ready=1)}
    burst = decide(spec, Observation(300.0, 5.0, idle, burst_rate=600.0, requests_rate=0.03,
                                     refused_share=0.0), CALIBRATED_IN_BURST, T0)
    assert "cpu bridging" in burst.reason
    steady = decide(spec, Observation(300.0, 300.0, idle, burst_rate=300.0, requests_rate=1.8,
                                      refused_share=0.0), CALIBRATED, T0)
    assert "bridging" not in steady.reason and steady.replicas["cpu"] == 1


def test_capacity_lost_to_spot_interruptions_is_not_bridged() -> None:
    spot = {"accelerator": "gpu", "capacityType": "spot", "costPerHour": 0.21,
            "throughput": 83.3, "maxReplicas": 40, "coldStartSeconds": 120,
            "fallbackTo": "gpu"}
    spec = build({"pools": {"gpu": dict(GPU, maxReplicas=40), "gpu-spot": spot,
                            "cpu": dict(CPU, maxReplicas=400, minReplicas=1)},
                  "scaling": {"latencySLOSeconds": 5.0, "maxSpotFraction": 1.0},
                  "routing": dict(WEIGHTED)})
    per = capacity_per_replica(spec, spec.pools["gpu-spot"])
    load = 10 * per * 0.23 * 0.9  # what ten spot replicas serve at the learned utilisation
    pools = {"gpu": PoolState(), "gpu-spot": PoolState(current=10, ready=10),
             "cpu": PoolState(current=1, ready=1)}
    steady = crowd(spec, pools, load=load, burst=load, memory=CALIBRATED)
    assert steady.replicas["gpu-spot"] >= 9 and steady.replicas["cpu"] == 1
    assert "bridging" not in steady.reason
    # two of ten reclaimed within the wave window: no wave (a quarter is three); a burst
    # at the same time panics, and the bridge covers what the eight Ready and the two
    # being replaced do not: the burst, not the interruptions
    hit = {**pools, "gpu-spot": PoolState(current=10, ready=8, interrupted=2)}
    burst = 5.0 * load
    memory = dataclasses.replace(steady.memory, short_since=T0 - 30)
    decision = crowd(spec, hit, load=load, burst=burst, memory=memory, now=T0 + 15)
    assert "wave" not in decision.reason and "cpu bridging" in decision.reason
    bridged = decision.replicas["cpu"] * capacity_per_replica(spec, spec.pools["cpu"])
    cpu = capacity_per_replica(spec, spec.pools["cpu"])
    assert bridged <= burst / decision.memory.utilisation - 10 * per + cpu


@pytest.mark.parametrize(
    ("label", "since", "bridged"),
    [
        ("this tick's reading only", None, False),
        ("30 s: the CPU pool's cold start, but not a tick more", T0 - 30, False),
        ("45 s: its cold start and a tick", T0 - 45, True),
    ],
)
def test_only_a_shortfall_that_has_lasted_is_bridged(label: str, since: float | None,
                                                     bridged: bool) -> None:
    decision = crowd(gpu_and_cpu(), memory=Memory(utilisation=0.23, short_since=since))
    assert "panic" in decision.reason, label
    assert ("cpu bridging" in decision.reason) is bridged, label
    assert decision.memory.short_since == (T0 if since is None else since), label


def test_a_reading_that_no_longer_panics_ends_the_shortfall() -> None:
    spec = gpu_and_cpu()
    hot = crowd(spec, memory=Memory(utilisation=0.23, short_since=T0 - 45))
    assert hot.memory.short_since == T0 - 45
    # the burst is over: panic holds (no scale-down) but the shortfall's count starts again
    calm = crowd(spec, load=50.0, burst=50.0, memory=hot.memory, now=T0 + 15)
    assert "panic" in calm.reason and calm.memory.short_since is None
    assert "bridging" not in calm.reason


def test_the_shortfall_start_survives_the_operator_restart() -> None:
    hot = crowd(gpu_and_cpu(), memory=Memory(utilisation=0.23, short_since=T0 - 45))
    stored = json.loads(json.dumps(hot.memory.to_dict()))  # what the operator writes
    assert Memory.from_dict(stored).short_since == T0 - 45
