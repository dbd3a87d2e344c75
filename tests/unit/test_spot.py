"""Spot waves against the interruption rate the engine has observed (`policy.spot`)."""

from __future__ import annotations

import json
import math

import pytest

from elastic_tts.policy import Memory, Observation, PoolState, decide
from elastic_tts.policy.model import Backoff
from elastic_tts.policy.spot import (
    RATE_MEMORY_SECONDS,
    WAVE_SIGNIFICANCE,
    poisson_threshold,
    rate_bound,
    update_exposure,
    wave_threshold,
)
from tests.unit.specs import GPU, SPOT, WEIGHTED, build

T0 = 1_795_000_000.0
HOUR = 3600.0
PER = 83.3  # chars/s per GPU replica, spot or not


def all_spot(replicas: int = 200) -> dict[str, object]:
    """On-demand GPU and spot GPU, every replica allowed on spot (maxSpotFraction 1)."""
    return {"pools": {"gpu": dict(GPU, maxReplicas=replicas),
                      "gpu-spot": dict(SPOT, maxReplicas=replicas)},
            "scaling": {"maxSpotFraction": 1.0, "latencySLOSeconds": 5.0},
            "routing": dict(WEIGHTED)}


def survival(mean: float, k: int) -> float:
    """P(N >= k) for N ~ Poisson(mean), summed directly."""
    return 1.0 - sum(math.exp(-mean) * mean ** i / math.factorial(i) for i in range(k))


@pytest.mark.parametrize("mean", [0.0, 0.004, 0.05, 0.53, 1.12, 3.3, 20.0, 80.0])
def test_the_threshold_is_the_first_count_as_rare_as_the_significance(mean: float) -> None:
    k = poisson_threshold(mean, at_most=10_000)  # a cap that does not bind here
    assert survival(mean, k) <= WAVE_SIGNIFICANCE + 1e-12
    assert k == 1 or survival(mean, k - 1) > WAVE_SIGNIFICANCE


@pytest.mark.timeout(5)
def test_a_rate_bound_from_seconds_of_experience_gives_the_quarter_at_once() -> None:
    # Two ticks a second apart (a conflict's retry) leave 20 replica-seconds and no
    # reclaim: the bound is about 0.15 per replica-second, a mean of 890 in the window,
    # whose exp(-mean) underflows; the bar is the quarter of the pool, reached at once.
    assert wave_threshold(20, rate_bound((T0, 20.0, 0.0))) == 5
    assert poisson_threshold(890.0, at_most=5) == 5


def test_the_rate_bound_is_above_the_estimate_and_tightens_with_experience() -> None:
    assert rate_bound(None) is None
    assert rate_bound((T0, 0.0, 0.0)) is None  # no replica-time seen: unknown
    little = rate_bound((T0, 100 * HOUR, 5.0))  # 5 reclaims in 100 replica-hours
    much = rate_bound((T0, 10_000 * HOUR, 500.0))  # the same rate, 100 times the data
    assert little is not None and much is not None
    assert 0.05 / HOUR < much < little < 0.15 / HOUR
    assert much < 1.1 * 0.05 / HOUR
    # nothing seen in 1000 replica-hours still leaves a bound above zero
    nothing = rate_bound((T0, 1000 * HOUR, 0.0))
    assert nothing is not None and 0 < nothing < 0.01 / HOUR


@pytest.mark.parametrize(
    ("label", "current", "rate", "expected"),
    [
        ("unknown rate: a quarter of the pool", 128, None, 32),
        ("unknown rate, small pool: at least two", 4, None, 2),
        ("routine rate 0.1/h on 128: far fewer than a quarter", 128, 0.1 / HOUR, 6),
        ("a pool reclaimed often needs no more than a quarter", 20, 2.0 / HOUR, 5),
        ("one reclaim is never a wave", 1, 1e-9, 2),
    ],
)
def test_wave_threshold(label: str, current: int, rate: float | None, expected: int) -> None:
    assert wave_threshold(current, rate) == expected, label


def test_exposure_adds_the_replica_time_that_can_be_reclaimed_and_decays() -> None:
    spec = build(all_spot())
    first = update_exposure(spec, Observation(0, 0, {"gpu-spot": PoolState(10, 10)}), {}, {}, T0)
    assert first == {"gpu-spot": (T0, 0.0, 0.0)}  # the first tick starts the clock
    state = PoolState(current=10, ready=8, pending=2, interrupted=1)
    second = update_exposure(spec, Observation(0, 0, {"gpu-spot": state}), first, {}, T0 + 15)
    # eight replicas not Pending for 15 s, one routine reclaim
    assert second["gpu-spot"] == pytest.approx((T0 + 15, 8 * 15.0, 1.0), rel=1e-4)
    # an operator away for an hour adds at most five minutes, and a day halves less
    later = update_exposure(spec, Observation(0, 0, {"gpu-spot": PoolState(10, 10)}), second,
                            {}, T0 + 15 + HOUR)
    decay = math.exp(-HOUR / RATE_MEMORY_SECONDS)
    assert later["gpu-spot"][1] == pytest.approx(120 * decay + 10 * 300.0)
    assert later["gpu-spot"][2] == pytest.approx(decay)


def test_interruptions_of_a_wave_are_not_routine() -> None:
    spec = build(all_spot())
    seen = {"gpu-spot": (T0, 100 * HOUR, 5.0)}
    hit = Observation(0, 0, {"gpu-spot": PoolState(current=100, ready=90, interrupted=10)})
    wave = {"gpu-spot": Backoff(T0 + 300, 1, "wave: 10 interrupted within 300s")}
    # a wave's own back-off: its interruptions add nothing (only a day's fading)
    routine = update_exposure(spec, hit, seen, wave, T0 + 15)["gpu-spot"][2]
    assert routine == pytest.approx(5.0, rel=1e-3)
    # a back-off for Pending replicas: a reclaim or two are routine ...
    pending = {"gpu-spot": Backoff(T0 + 300, 1, "pending 130s > 120s")}
    few = Observation(0, 0, {"gpu-spot": PoolState(current=100, ready=98, interrupted=2)})
    routine = update_exposure(spec, few, seen, pending, T0 + 15,
                              {"gpu-spot": ((T0 + 15, 2),)})["gpu-spot"][2]
    assert routine == pytest.approx(7.0, rel=1e-3)
    # ... but a wave within it is still the wave's, though it starts no back-off of its own
    routine = update_exposure(spec, hit, seen, pending, T0 + 15,
                              {"gpu-spot": ((T0 + 15, 10),)})["gpu-spot"][2]
    assert routine == pytest.approx(5.0, rel=1e-3)


def steady(spec_replicas: int, experience: tuple[float, float] | None
           ) -> tuple[Memory, dict[str, PoolState]]:
    """A service on `spec_replicas` Ready spot replicas, with `experience` (replica-hours,
    routine reclaims) of the pool behind it, or none."""
    pools = {"gpu": PoolState(), "gpu-spot": PoolState(spec_replicas, spec_replicas)}
    memory = Memory(targets={"gpu": 0, "gpu-spot": spec_replicas},
                    sized_for=spec_replicas * PER)
    if experience is not None:
        memory = Memory(targets=memory.targets, sized_for=memory.sized_for,
                        spot_exposure={"gpu-spot": (T0 - 15, experience[0] * HOUR,
                                                    experience[1])})
    return memory, pools


@pytest.mark.parametrize(
    ("label", "experience", "lost", "wave"),
    [
        # 128 replicas at about 0.05 reclaims a replica-hour (its bound 0.105 after five
        # in 100 replica-hours) lose 1.1 in five minutes: seven at once is a wave
        ("seven of 128 with experience", (100.0, 5.0), 7, True),
        ("six of 128 with experience: still routine enough", (100.0, 5.0), 6, False),
        # without experience the bar stays at a quarter of the pool, as before
        ("six of 128 without experience", None, 6, False),
        ("a quarter of 128 without experience", None, 32, True),
        # a pool that loses two a replica-hour loses 24 in five minutes: the bar stays
        # at the quarter, never above it
        ("31 of 128 on a pool reclaimed often", (100.0, 200.0), 31, False),
        ("32 of 128 on a pool reclaimed often", (100.0, 200.0), 32, True),
    ],
)
def test_a_wave_is_measured_against_the_rate_observed(
        label: str, experience: tuple[float, float] | None, lost: int, wave: bool) -> None:
    spec = build(all_spot())
    replicas = 128
    load = replicas * PER * 0.7 * 0.95  # what 128 serve at the target utilisation, nearly
    memory, pools = steady(replicas, experience)
    hit = {**pools, "gpu-spot": PoolState(current=replicas, ready=replicas - lost,
                                          pending=lost, interrupted=lost)}
    decision = decide(spec, Observation(load, load, hit), memory, T0)
    assert (decision.mode == "fallback") == wave, label
    if wave:
        assert f"gpu-spot backed off (wave: {lost} interrupted within 300s)" in decision.reason
        # the survivors stay on spot; only what was lost moves, at once
        assert decision.replicas["gpu-spot"] == replicas - lost
        assert decision.replicas["gpu"] >= lost
    else:
        assert decision.replicas == {"gpu": 0, "gpu-spot": replicas}, label


def test_experience_survives_the_operator_writing_memory() -> None:
    memory = Memory(spot_exposure={"gpu-spot": (T0, 360_000.0, 5.0)})
    stored = json.loads(json.dumps(memory.to_dict()))
    assert Memory.from_dict(stored).spot_exposure == memory.spot_exposure


def test_decide_learns_the_rate_tick_by_tick() -> None:
    spec = build(all_spot())
    load = 10 * PER * 0.6
    pools = {"gpu": PoolState(), "gpu-spot": PoolState(10, 10)}
    memory = Memory()
    for index in range(41):  # ten minutes of 15 s ticks, one routine reclaim in the middle
        lost = 1 if index == 20 else 0
        state = {**pools, "gpu-spot": PoolState(10, 10 - lost, pending=lost, interrupted=lost)}
        memory = decide(spec, Observation(load, load, state), memory, T0 + 15 * index).memory
    since, seconds, events = memory.spot_exposure["gpu-spot"]
    assert since == T0 + 600
    assert seconds == pytest.approx(10 * 600 - 15, rel=1e-2)  # the Pending one for a tick
    assert seconds < 10 * 600 - 15  # a day's fading has begun
    assert events == pytest.approx(1.0, rel=1e-2)
