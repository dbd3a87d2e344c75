"""decide(): every stage, table-driven where it fits, with time passed in (no sleeps)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from elastic_tts.policy import Memory, Observation, PoolState, decide
from elastic_tts.policy.model import Backoff
from elastic_tts.policy.spot import update_backoff
from tests.unit.cluster import FakeCluster, drive
from tests.unit.specs import CPU, GPU, MIXABLE_SLO, WEIGHTED, build, three_pools

T0 = 1_795_000_000.0  # 2026-11-18, a fixed instant; no window is open in these specs


def two_pools(**scaling: Any) -> dict[str, Any]:
    return {"pools": {"gpu": dict(GPU), "cpu": dict(CPU, maxReplicas=3)},
            "scaling": {"latencySLOSeconds": MIXABLE_SLO, **scaling},
            "routing": dict(WEIGHTED)}


@pytest.mark.parametrize(
    ("label", "short", "long", "scaling", "demand"),
    [
        ("long window larger", 50.0, 70.0, {}, 100.0),
        ("short window larger", 140.0, 70.0, {}, 200.0),
        ("utilisation", 60.0, 60.0, {"targetUtilization": 0.5}, 120.0),
        ("one rate missing", None, 35.0, {}, 50.0),
        ("requests/s", 0.35, 0.35, {"metric": "requests"}, 0.5),
    ],
)
def test_demand(label: str, short: float | None, long: float | None, scaling: dict[str, Any],
                demand: float) -> None:
    spec = build(three_pools(**scaling))
    decision = decide(spec, Observation(short, long), Memory(), T0)
    assert decision.demand == pytest.approx(demand), label


def test_requests_metric_converts_capacity() -> None:
    spec = build(three_pools(metric="requests", charactersPerRequest=100))
    decision = decide(spec, Observation(0.35, 0.35), Memory(), T0)
    # 0.5 req/s wanted; a CPU replica serves 26.3 chars/s = 0.263 req/s
    assert decision.replicas == {"gpu": 0, "gpu-spot": 0, "cpu": 2}
    assert "req/s" in decision.reason


def test_scale_up_is_immediate() -> None:
    spec = build(two_pools())
    ticks = drive(spec, FakeCluster(spec), [10, 10, 300], T0)
    assert ticks[1].decision.replicas == ticks[0].decision.replicas
    assert ticks[2].decision.capacity >= 300 / 0.7


def test_each_pool_scales_down_after_its_own_window() -> None:
    # Windows: one cold start, at least two intervals, at most the spec's 300 s:
    # gpu (120 s cold start) 120 s, cpu (30 s) 30 s.
    spec = build(two_pools())
    ticks = drive(spec, FakeCluster(spec), [60.0] + [5.0] * 25, T0)
    high = ticks[0].decision.replicas
    assert high == {"gpu": 1, "cpu": 1}
    for tick in ticks[1:9]:  # t = 15 .. 120: gpu's 86 chars/s plan is within its window
        assert tick.decision.replicas["gpu"] == 1, tick.now - T0
    assert ticks[9].decision.replicas["gpu"] == 0  # t = 135: it has left the window
    assert ticks[-1].decision.replicas == {"gpu": 0, "cpu": 1}
    assert "holding for 86 seen in last 30s" in ticks[1].decision.reason


def test_scale_down_window_follows_the_cold_start() -> None:
    from elastic_tts.policy.decide import scale_down_window

    spec = build(two_pools())
    assert scale_down_window(spec, spec.pools["gpu"]) == 120
    assert scale_down_window(spec, spec.pools["cpu"]) == 30  # two 15 s intervals
    capped = build(two_pools(scaleDownStabilizationSeconds=100))
    assert scale_down_window(capped, capped.pools["gpu"]) == 100


@pytest.mark.parametrize(
    ("label", "loads", "changes_at"),
    [
        ("dips inside the band are ignored", [100, 95, 91, 100, 92], []),
        ("a drop past the band scales down", [100, 95, 60], [2]),
        ("a rise past capacity scales up", [100, 95, 130], [2]),
    ],
)
def test_tolerance_band(label: str, loads: list[float], changes_at: list[int]) -> None:
    spec = build(two_pools(scaleDownStabilizationSeconds=0))
    # Ticks 200 s apart, so new replicas are Ready and make-before-break does not hold.
    ticks = drive(spec, FakeCluster(spec), [float(x) for x in loads], T0, interval=200)
    changed = [i for i in range(1, len(ticks))
               if ticks[i].decision.replicas != ticks[i - 1].decision.replicas]
    assert changed == changes_at, label


def test_spot_pending_too_long_falls_back_and_retries() -> None:
    spec = build(three_pools())
    cluster = FakeCluster(spec, spot_shortage=True)
    ticks = drive(spec, cluster, [300.0] * 60, T0)  # 15 minutes
    first = ticks[0].decision
    assert first.replicas["gpu-spot"] > 0 and first.mode == "peak"
    # Pending 120 s is allowed; the first tick past it (t=135) backs off.
    fell = next(i for i, t in enumerate(ticks) if t.decision.mode == "fallback")
    assert ticks[fell].now - T0 == 135
    decision = ticks[fell].decision
    assert decision.replicas["gpu-spot"] == 0
    assert decision.capacity >= 300 / 0.7  # covered without spot
    assert decision.replicas["cpu"] == 6  # the cheaper cover is at its ceiling already
    assert decision.replicas["gpu"] > first.replicas["gpu"]
    assert "gpu-spot backed off (pending 135s > 120s) for 300s, covered by" in decision.reason
    assert decision.spot_backoff == {"gpu-spot": T0 + 135 + 300}
    # After the back-off spot is tried again; still short, so it backs off again, as long:
    # the retry's cover was held, so it cost nothing but the Pending pods.
    retried = next(i for i in range(fell, len(ticks)) if ticks[i].decision.mode != "fallback")
    assert ticks[retried].now - T0 == 135 + 300
    assert ticks[retried].decision.replicas["gpu-spot"] > 0
    again = next(i for i in range(retried, len(ticks)) if ticks[i].decision.mode == "fallback")
    assert ticks[again].decision.memory.backoff["gpu-spot"].failures == 2
    assert ticks[again].decision.spot_backoff["gpu-spot"] == ticks[again].now + 300


@pytest.mark.parametrize(
    ("label", "since_expiry", "state", "expected"),
    [
        # Survivors Ready at the tick the back-off ends used to look healthy, so a pool
        # that kept some spot never counted a failure in a row (one that lost all did).
        ("survivors Ready, retry not yet asked: still counted", 15,
         PoolState(current=5, ready=5), (1, None)),
        ("the retry Pending too long: a second failure, as long", 150,
         PoolState(current=8, ready=5, pending=3, pending_seconds=135), (2, 300)),
        ("the retry Ready after a cold start: forgotten", 135,
         PoolState(current=8, ready=8), None),
        ("nothing asked of spot: nothing proven", 135, PoolState(), (1, None)),
    ],
)
def test_failures_are_forgotten_only_once_a_retry_proves_spot(
        label: str, since_expiry: float, state: PoolState,
        expected: tuple[int, float | None] | None) -> None:
    spec = build(three_pools())
    until = T0 + 300
    previous = {"gpu-spot": Backoff(until, 1, "pending 135s > 120s")}
    now = until + since_expiry
    updated = update_backoff(spec, Observation(300.0, 300.0, {"gpu-spot": state}),
                             previous, now)
    if expected is None:
        assert "gpu-spot" not in updated, label
        return
    failures, delay = expected
    entry = updated["gpu-spot"]
    assert entry.failures == failures, label
    assert entry.until == (until if delay is None else now + delay), label


def test_back_off_reoptimises_over_every_remaining_pool() -> None:
    # fallbackTo names gpu, but CPU is cheaper per unit of capacity (0.0877 / 26.3 against
    # 0.526 / 83.3), so with room on CPU it is CPU that covers spot.
    data = three_pools()
    data["pools"]["cpu"]["maxReplicas"] = 40
    spec = build(data)
    cluster = FakeCluster(spec, spot_shortage=True)
    ticks = drive(spec, cluster, [600.0] * 12, T0)
    first, fell = ticks[0].decision, ticks[9].decision
    assert first.replicas["gpu-spot"] > 0 and fell.mode == "fallback"
    assert fell.memory.targets["gpu-spot"] == 0
    assert fell.replicas["gpu"] == first.replicas["gpu"]
    assert fell.replicas["cpu"] > first.replicas["cpu"]
    assert fell.capacity >= 600 / 0.7
    assert "covered by cpu" in fell.reason


def test_capacity_returns_to_spot_when_healthy() -> None:
    spec = build(three_pools())
    cluster = FakeCluster(spec, spot_shortage=True)
    ticks = drive(spec, cluster, [300.0] * 20, T0)  # backs off at t=135, retries at t=435
    assert ticks[-1].decision.mode == "fallback"
    cluster.spot_shortage = False
    later = drive(spec, cluster, [300.0] * 30, ticks[-1].now + 15, memory=ticks[-1].decision.memory)
    final = later[-1].decision
    assert final.mode == "peak" and final.replicas == ticks[0].decision.replicas
    assert "spot healthy" in final.reason
    assert final.memory.backoff == {}  # a healthy tick forgets the failures


@pytest.mark.parametrize(
    ("label", "interrupted", "backs_off"),
    [
        ("one reclaim is replaced on spot", 1, False),
        ("two of six within minutes is a wave", 2, True),
    ],
)
def test_interruptions_replace_on_spot_unless_a_wave(label: str, interrupted: int,
                                                    backs_off: bool) -> None:
    spec = build(three_pools())
    cluster = FakeCluster(spec)
    ticks = drive(spec, cluster, [300.0] * 10, T0)
    before = ticks[-1].decision
    spot = before.replicas["gpu-spot"]
    assert spot >= 4
    cluster.interrupt("gpu-spot", interrupted)
    after = drive(spec, cluster, [300.0], ticks[-1].now + 15, memory=before.memory)[0].decision
    assert (after.mode == "fallback") == backs_off, label
    if backs_off:
        assert "gpu-spot backed off (wave: 2 interrupted within 300s)" in after.reason
        # No replacement on spot; the survivors keep serving, the lost capacity is
        # covered elsewhere.
        assert after.replicas["gpu-spot"] == spot - interrupted
        assert after.capacity >= 300 / 0.7
    else:
        assert after.replicas == before.replicas  # the Deployment replaces it on spot
        assert "spot healthy" in after.reason


def test_interruptions_spread_over_time_are_no_wave() -> None:
    spec = build(three_pools())
    cluster = FakeCluster(spec)
    ticks = drive(spec, cluster, [300.0] * 10, T0)
    memory = ticks[-1].decision.memory
    now = ticks[-1].now
    spot = ticks[-1].decision.replicas["gpu-spot"]
    for _ in range(3):  # one reclaim every 10 minutes: each is replaced on spot
        cluster.interrupt("gpu-spot", 1)
        cluster.apply({"gpu-spot": spot}, now)  # the Deployment's replacement
        later = drive(spec, cluster, [300.0] * 40, now + 15, memory=memory)
        assert all(t.decision.mode != "fallback" for t in later)
        memory, now = later[-1].decision.memory, later[-1].now


def test_make_before_break_holds_the_old_pool_until_the_new_one_is_ready() -> None:
    spec = build(two_pools(scaleDownStabilizationSeconds=0))  # no window: only the hold
    cluster = FakeCluster(spec)
    ticks = drive(spec, cluster, [35.0] * 4 + [60.0] * 12, T0)  # 50 -> 86 chars/s wanted
    assert ticks[3].decision.replicas == {"gpu": 0, "cpu": 2}
    shift = ticks[4].decision  # optimum is now gpu 1 + cpu 1
    assert shift.replicas == {"gpu": 1, "cpu": 2}  # cpu held at 2
    assert "holding cpu at 2 until new capacity is Ready" in shift.reason
    ready_at = ticks[4].now + 120
    for tick in ticks[5:]:
        expected = {"gpu": 1, "cpu": 2 if tick.now < ready_at else 1}
        assert tick.decision.replicas == expected, tick.now - ticks[4].now


def test_make_before_break_gives_up_after_cold_start_plus_grace() -> None:
    data = three_pools(maxSpotFraction=1.0)
    data["pools"]["gpu-spot"]["fallbackAfterSeconds"] = 3600  # keep spot from backing off
    spec = build(data)
    cluster = FakeCluster(spec)
    # Steps small enough never to panic (each under twice the Ready capacity).
    ticks = drive(spec, cluster, [15.0] * 3 + [30.0] * 8, T0)
    assert ticks[-1].decision.replicas == {"gpu": 0, "gpu-spot": 0, "cpu": 2}
    cluster.spot_shortage = True
    more = drive(spec, cluster, [60.0] * 16, ticks[-1].now + 15, memory=ticks[-1].decision.memory)
    start = more[0]
    assert start.decision.replicas["gpu-spot"] > 0
    wanted = start.decision.memory.targets["cpu"]
    assert wanted == 1 and start.decision.replicas["cpu"] == 2  # held
    deadline = start.now + 120 + 60  # spot cold start + transitionGraceSeconds
    for tick in more:
        cpu = tick.decision.replicas["cpu"]
        assert cpu == (2 if tick.now < deadline else wanted), tick.now - start.now


@pytest.mark.parametrize(
    ("label", "scaling", "expected"),
    [
        ("hold keeps what runs", {}, {"gpu": 1, "cpu": 3}),
        ("fallback replicas", {"onMetricsUnavailable": "fallbackReplicas",
                               "fallbackReplicas": {"gpu": 2}}, {"gpu": 2, "cpu": 0}),
    ],
)
def test_missing_metrics(label: str, scaling: dict[str, Any], expected: dict[str, int]) -> None:
    spec = build(two_pools(**scaling))
    cluster = FakeCluster(spec)
    ticks = drive(spec, cluster, [100.0, 100.0, None, None], T0)
    assert ticks[1].decision.replicas == {"gpu": 1, "cpu": 3}
    for tick in ticks[2:]:
        assert tick.decision.replicas == expected, label
        assert tick.decision.metrics_held and tick.decision.demand is None
        assert "metrics unavailable" in tick.decision.reason


def test_missing_metrics_never_scale_to_zero_but_respect_a_shutdown() -> None:
    data = two_pools()
    data["schedule"] = {"windows": [{"name": "night", "start": "0 0 * * *", "duration": "6h",
                                     "mode": "shutdown"}]}
    spec = build(data)
    running = {"gpu": PoolState(current=2, ready=2), "cpu": PoolState(current=1, ready=1)}
    noon = 1_795_003_200.0 - 1_795_003_200.0 % 86400 + 12 * 3600
    held = decide(spec, Observation(None, None, running, False), Memory(), noon)
    assert held.replicas == {"gpu": 2, "cpu": 1}
    night = decide(spec, Observation(None, None, running, False), Memory(), noon + 13 * 3600)
    assert night.replicas == {"gpu": 0, "cpu": 0} and night.mode == "shutdown"


def test_paused_changes_nothing() -> None:
    spec = build({**two_pools(), "paused": True})
    running = {"gpu": PoolState(current=3, ready=3), "cpu": PoolState(current=0)}
    decision = decide(spec, Observation(1.0, 1.0, running), Memory(), T0)
    assert decision.replicas == {"gpu": 3, "cpu": 0} and decision.mode == "paused"


def test_a_pool_too_slow_for_the_slo_does_not_count() -> None:
    spec = build(two_pools(latencySLOSeconds=2.0))  # CPU takes 3.8 s per 100 characters
    decision = decide(spec, Observation(20.0, 20.0), Memory(), T0)
    assert decision.replicas == {"gpu": 1, "cpu": 0}
    assert "cpu too slow for the SLO" in decision.reason


@pytest.mark.parametrize(
    ("label", "mode", "expected", "expected_mode"),
    [
        ("shutdown", "shutdown", {"gpu": 0, "gpu-spot": 0, "cpu": 0}, "shutdown"),
        ("cpu-only", "cpu-only", {"gpu": 0, "gpu-spot": 0, "cpu": 6}, "cpu-only"),
    ],
)
def test_window_modes(label: str, mode: str, expected: dict[str, int], expected_mode: str) -> None:
    data = three_pools()
    data["schedule"] = {"windows": [{"name": "w", "start": "* * * * *", "duration": "1h",
                                     "mode": mode}]}
    decision = decide(build(data), Observation(300.0, 300.0), Memory(), T0)
    assert decision.replicas == expected and decision.mode == expected_mode, label


def test_reason_reads_like_the_example() -> None:
    spec = build(three_pools())
    current = {"gpu": PoolState(), "gpu-spot": PoolState(), "cpu": PoolState(current=3, ready=3)}
    decision = decide(spec, Observation(287.0, 287.0, current), Memory(), T0)
    assert decision.reason.startswith("gpu-spot 0→")
    assert "demand 410 chars/s exceeds cpu ceiling 158" in decision.reason
    assert decision.reason.endswith("spot healthy")


def test_cost_per_hour_is_the_sum_of_replica_prices() -> None:
    spec = build(three_pools())
    decision = decide(spec, Observation(287.0, 287.0), Memory(), T0)
    expected = sum(spec.pools[n].cost_per_hour * c for n, c in decision.replicas.items())
    assert decision.cost_per_hour == pytest.approx(expected)


def test_memory_survives_json_so_a_restart_resumes_identically() -> None:
    spec = build(three_pools())
    loads = [300.0] * 12 + [40.0] * 30
    direct = drive(spec, FakeCluster(spec, spot_shortage=True), loads, T0)
    cluster = FakeCluster(spec, spot_shortage=True)
    memory = Memory()
    for index, load in enumerate(loads):
        now = T0 + 15 * index
        stored = json.loads(json.dumps(memory.to_dict()))  # what the operator writes
        decision = decide(spec, Observation(load, load, cluster.state(now)),
                          Memory.from_dict(stored), now)
        cluster.apply(decision.replicas, now)
        memory = decision.memory
        assert decision.replicas == direct[index].decision.replicas, index


def test_unreadable_memory_starts_afresh() -> None:
    assert Memory.from_dict({"samples": "garbage"}) == Memory()
    assert Memory.from_dict(None) == Memory()


def test_a_wave_keeps_the_survivors_and_covers_only_what_was_lost() -> None:
    spec = build({"pools": {"gpu": dict(GPU), "gpu-spot": dict(three_pools()["pools"]["gpu-spot"])},
                  "scaling": {"maxSpotFraction": 1.0}, "routing": dict(WEIGHTED)})
    cluster = FakeCluster(spec)
    ticks = drive(spec, cluster, [300.0] * 10, T0)
    assert ticks[-1].decision.replicas == {"gpu": 0, "gpu-spot": 6}
    cluster.interrupt("gpu-spot", 2)
    before = cluster.ready_capacity(ticks[-1].now + 15)
    after = drive(spec, cluster, [300.0], ticks[-1].now + 15, memory=ticks[-1].decision.memory)
    assert after[0].decision.replicas == {"gpu": 2, "gpu-spot": 4}
    assert cluster.ready_capacity(after[0].now) == before


@pytest.mark.parametrize(
    ("label", "load", "weighted", "round_robin"),
    [
        # 143 chars/s wanted. Weighted: 1 GPU + 3 CPU. Round-robin would give each of those
        # 4 replicas 36 chars/s, more than a CPU replica's 26.3, so it picks 2 GPUs.
        ("mixes only when the slowest keeps up", 100.0, {"gpu": 1, "cpu": 3}, {"gpu": 2, "cpu": 0}),
        ("thin traffic is CPU either way", 30.0, {"gpu": 0, "cpu": 2}, {"gpu": 0, "cpu": 2}),
    ],
)
def test_round_robin_dispatch_without_routing(label: str, load: float, weighted: dict[str, int],
                                              round_robin: dict[str, int]) -> None:
    with_route = build(two_pools())
    plain = build({**two_pools(), "routing": {"enabled": False}})
    assert decide(with_route, Observation(load, load), Memory(), T0).replicas == weighted, label
    decision = decide(plain, Observation(load, load), Memory(), T0)
    assert decision.replicas == round_robin, label
    assert decision.capacity >= load / 0.7


def test_round_robin_capacity_counts_the_slowest_replica() -> None:
    plain = build({**two_pools(), "routing": {"enabled": False}})
    running = {"gpu": PoolState(current=1, ready=1), "cpu": PoolState(current=3, ready=3)}
    decision = decide(plain, Observation(100.0, 100.0, running), Memory(), T0)
    # 1 GPU + 3 CPU behind a plain Service serve 4 x 26.3 = 105 chars/s, not 162.
    assert decision.memory.targets == {"gpu": 2, "cpu": 0}
    assert decision.replicas["cpu"] == 3  # still held until the GPUs are Ready


def test_readings_after_an_outage_wait_a_window_before_scaling_down() -> None:
    # 300 s window, 15 s interval: 60 chars/s, then 25 ticks (375 s) without metrics,
    # longer than the window, then low readings (a rate over the first fresh scrapes).
    spec = build(two_pools())
    ticks = drive(spec, FakeCluster(spec), [60.0] + [None] * 25 + [5.0] * 22, T0)
    high = ticks[0].decision.replicas
    assert all(t.decision.replicas == high for t in ticks[1:26])  # held while blind
    for tick in ticks[26:34]:  # readings back: gpu's 120 s window holds the blind demand
        assert tick.decision.replicas == high, tick.now - T0
    assert ticks[-1].decision.replicas != high  # a whole window of low readings: down
