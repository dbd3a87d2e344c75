"""Optimise stage: hand-checked cases, and equality with brute force on random instances."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elastic_tts.policy.optimise import PoolOption, brute_force, optimise

GPU = PoolOption("gpu", capacity=83.3, cost=0.526, low=0, high=8, spot=False)
SPOT = PoolOption("spot", capacity=83.3, cost=0.21, low=0, high=8, spot=True)
CPU = PoolOption("cpu", capacity=26.3, cost=0.0877, low=0, high=6, spot=False)


@pytest.mark.parametrize(
    ("label", "options", "demand", "fraction", "counts"),
    [
        ("no load, no floors", [GPU, SPOT, CPU], 0, 0.7, {"gpu": 0, "spot": 0, "cpu": 0}),
        ("thin load goes to cpu", [GPU, SPOT, CPU], 20, 0.7, {"gpu": 0, "spot": 0, "cpu": 1}),
        ("cpu until it is dearer", [GPU, CPU], 70, 1.0, {"gpu": 0, "cpu": 3}),
        # 4 CPUs (0.351/h, 105 chars/s) beat 2 GPUs (1.052/h) for 90 chars/s
        ("cheapest mix not cheapest pool", [GPU, CPU], 90, 1.0, {"gpu": 0, "cpu": 4}),
        ("cpu ceiling then gpu", [GPU, CPU], 200, 1.0, {"gpu": 1, "cpu": 5}),
        ("spot limited by fraction", [GPU, SPOT], 160, 0.5, {"gpu": 1, "spot": 1}),
        ("all spot allowed", [GPU, SPOT], 160, 1.0, {"gpu": 0, "spot": 2}),
        ("no spot allowed", [GPU, SPOT], 160, 0.0, {"gpu": 2, "spot": 0}),
        ("floors are kept", [PoolOption("gpu", 83.3, 0.526, 2, 8, False), CPU], 10, 1.0,
         {"gpu": 2, "cpu": 0}),
        ("over every ceiling: cover the most", [GPU, CPU], 10_000, 1.0, {"gpu": 8, "cpu": 6}),
        ("slow pool held at floor", [GPU, PoolOption("slow", 0.0, 0.01, 1, 5, False)], 50, 1.0,
         {"gpu": 1, "slow": 1}),
        ("spot floor forces on-demand", [PoolOption("spot", 83.3, 0.21, 2, 8, True), GPU], 10,
         0.5, {"spot": 2, "gpu": 2}),
        ("impossible fraction is dropped", [PoolOption("spot", 83.3, 0.21, 1, 8, True)], 10,
         0.5, {"spot": 1}),
    ],
)
def test_cases(label: str, options: list[PoolOption], demand: float, fraction: float,
               counts: dict[str, int]) -> None:
    plan = optimise(options, demand, fraction)
    assert plan.counts == counts, label
    assert plan.cost == pytest.approx(brute_force(options, demand, fraction).cost)


pool_options = st.builds(
    lambda i, cap, cost, low, span, spot: PoolOption(
        f"p{i}", cap, cost, low, low + span, spot
    ),
    st.integers(0, 10**6),
    st.one_of(st.just(0.0), st.floats(5, 120)),
    st.floats(0.01, 2.0),
    st.integers(0, 2),
    st.integers(0, 4),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    options=st.lists(pool_options, min_size=1, max_size=4, unique_by=lambda o: o.name),
    demand=st.floats(0, 600),
    fraction=st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]),
)
def test_optimiser_equals_brute_force(options: list[PoolOption], demand: float,
                                      fraction: float) -> None:
    fast = optimise(options, demand, fraction)
    slow = brute_force(options, demand, fraction)
    assert min(fast.capacity, demand) == pytest.approx(min(slow.capacity, demand), abs=1e-6)
    assert fast.cost == pytest.approx(slow.cost, abs=1e-6)
    for option in options:
        assert option.low <= fast.counts[option.name] <= option.high


def test_six_pools_large_ceilings_stays_exact() -> None:
    options = [
        PoolOption("gpu-a", 83.3, 0.526, 0, 20, False),
        PoolOption("gpu-b", 100.0, 0.61, 0, 20, False),
        PoolOption("spot-a", 83.3, 0.21, 0, 20, True),
        PoolOption("spot-b", 100.0, 0.25, 0, 20, True),
        PoolOption("cpu-a", 26.3, 0.0877, 0, 20, False),
        PoolOption("cpu-b", 30.0, 0.11, 0, 20, False),
    ]
    small = [PoolOption(o.name, o.capacity, o.cost, o.low, 3, o.spot) for o in options]
    assert optimise(small, 500, 0.6).cost == pytest.approx(brute_force(small, 500, 0.6).cost)
    plan = optimise(options, 2500, 0.6)
    assert plan.capacity >= 2500 and plan.spot_capacity <= 0.6 * plan.capacity + 1e-9


def brute_force_round_robin(options: list[PoolOption], demand: float,
                            fraction: float) -> tuple[float, float]:
    """(best coverage, its cheapest cost) when every replica in use gets an equal share."""
    import itertools

    from elastic_tts.policy.optimise import round_robin_capacity

    capacity = {o.name: o.capacity for o in options}
    best: tuple[float, float] | None = None
    for relax in (fraction, 1.0):
        for combo in itertools.product(*[range(o.low, o.high + 1) for o in options]):
            counts = {o.name: n for o, n in zip(options, combo, strict=True)}
            served = round_robin_capacity(counts, capacity)
            used = [o for o in options if counts[o.name] > 0 and o.capacity > 0]
            spot = sum(counts[o.name] for o in used if o.spot)
            if spot > relax * sum(counts[o.name] for o in used) + 1e-9:
                continue
            cost = sum(counts[o.name] * o.cost for o in options)
            key = (-min(served, demand), cost)
            if best is None or key[0] < best[0] - 1e-9 or (
                    abs(key[0] - best[0]) <= 1e-9 and key[1] < best[1] - 1e-9):
                best = key
        if best is not None:
            break
    assert best is not None
    return -best[0], best[1]


@settings(max_examples=200, deadline=None)
@given(
    options=st.lists(pool_options, min_size=1, max_size=3, unique_by=lambda o: o.name),
    demand=st.floats(0, 400),
    fraction=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_round_robin_optimiser_equals_brute_force(options: list[PoolOption], demand: float,
                                                  fraction: float) -> None:
    from elastic_tts.policy.optimise import optimise_round_robin, round_robin_capacity

    plan = optimise_round_robin(options, demand, fraction)
    covered, cost = brute_force_round_robin(options, demand, fraction)
    served = round_robin_capacity(plan.counts, {o.name: o.capacity for o in options})
    assert min(served, demand) == pytest.approx(covered, abs=1e-6)
    assert plan.cost == pytest.approx(cost, abs=1e-6)
