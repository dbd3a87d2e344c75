"""Benchmark: one `decide` call with 3 and 6 pools, and the optimiser against brute force.

The clock advances 15 s per call across a simulated day and the load follows a diurnal
curve, so the schedule's per-minute cache is exercised as the operator would (3 of 4
ticks in a minute hit it). Figures are medians over many calls, side by side in one run.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from elastic_tts.policy import Memory, Observation, PoolState, decide, parse_spec
from elastic_tts.policy.decide import capacity_per_replica
from elastic_tts.policy.optimise import PoolOption, brute_force, optimise

T0 = 1_795_000_000.0
CALLS = 4000
SCHEDULE = {"timezone": "Asia/Shanghai", "windows": [
    {"name": "peak", "start": "0 9 * * 1-5", "duration": "10h",
     "pools": {"gpu": {"minReplicas": 1}}},
    {"name": "night", "start": "0 1 * * *", "duration": "6h", "mode": "shutdown"},
]}


def pool(accelerator: str, kind: str, cost: float, throughput: float, high: int,
         **extra: Any) -> dict[str, Any]:
    return {"accelerator": accelerator, "capacityType": kind, "costPerHour": cost,
            "throughput": throughput, "maxReplicas": high, **extra}


THREE = {
    "gpu": pool("gpu", "on-demand", 0.526, 83.3, 10),
    "gpu-spot": pool("gpu", "spot", 0.21, 83.3, 10, fallbackTo="gpu"),
    "cpu": pool("cpu", "on-demand", 0.0877, 26.3, 10),
}
SIX = {
    **THREE,
    "gpu-l4": pool("gpu", "on-demand", 0.70, 120.0, 10),
    "gpu-l4-spot": pool("gpu", "spot", 0.28, 120.0, 10, fallbackTo="gpu-l4"),
    "cpu-large": pool("cpu", "on-demand", 0.16, 45.0, 10),
}


def time_decide(pools: dict[str, Any], signals: bool = False) -> float:
    """Median seconds per call; with `signals`, every optional input is observed too
    (the ~15 s rate, the requests rate, the backlog and the refusal share), so the
    noise bands, the burst history, the backlog drain and the calibration all run."""
    spec = parse_spec({"pools": pools, "schedule": SCHEDULE})
    memory = Memory()
    states = {name: PoolState() for name in pools}
    samples = []
    for i in range(CALLS):
        now = T0 + 15 * i
        load = 300 + 250 * math.sin(2 * math.pi * i / 5760)  # one day of 15 s ticks
        if signals:
            observation = Observation(load, load * 0.95, states, burst_rate=load * 1.3,
                                      requests_rate=load / 150, backlog_characters=load * 4,
                                      refused_share=0.02)
        else:
            observation = Observation(load, load * 0.95, states)
        start = time.perf_counter()
        decision = decide(spec, observation, memory, now)
        samples.append(time.perf_counter() - start)
        memory = decision.memory
        states = {n: PoolState(current=c, ready=c) for n, c in decision.replicas.items()}
    return statistics.median(samples)


def options_for(pools: dict[str, Any], high: int) -> list[PoolOption]:
    spec = parse_spec({"pools": pools})
    return [PoolOption(p.name, capacity_per_replica(spec, p), p.cost_per_hour, 0, high,
                       p.is_spot) for p in spec.pools.values()]


def time_optimiser(pools: dict[str, Any], high: int, demands: list[float]) -> tuple[float, float]:
    options = options_for(pools, high)
    fast, slow = [], []
    for demand in demands:
        start = time.perf_counter()
        plan = optimise(options, demand, 0.7)
        fast.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference = brute_force(options, demand, 0.7)
        slow.append(time.perf_counter() - start)
        assert abs(plan.cost - reference.cost) < 1e-9, (demand, plan, reference)
    return statistics.median(fast), statistics.median(slow)


def main() -> None:
    print("decide(): median over", CALLS, "calls, 15 s apart across a day")
    three, six = time_decide(THREE), time_decide(SIX)
    full = time_decide(THREE, signals=True)
    verdict = "met" if max(three, full) <= 1e-3 else "MISSED"
    print(f"  3 pools  {three * 1e3:8.3f} ms   (goal <= 1 ms: {verdict})")
    print(f"  3 pools, every admission signal observed  {full * 1e3:8.3f} ms")
    print(f"  6 pools  {six * 1e3:8.3f} ms   ({six / three:.1f}x the 3-pool time)")
    print()
    print("optimiser vs brute force (same instances, costs checked equal)")
    print(f"  {'instance':<24}{'engine':>12}{'brute force':>14}{'speed-up':>10}")
    for label, pools, high, demands in [
        ("3 pools, max 10", THREE, 10, [50.0 * k for k in range(1, 21)]),
        ("3 pools, max 30", THREE, 30, [150.0 * k for k in range(1, 21)]),
        ("6 pools, max 6", SIX, 6, [60.0 * k for k in range(1, 21)]),
    ]:
        fast, slow = time_optimiser(pools, high, demands)
        print(f"  {label:<24}{fast * 1e3:10.3f}ms{slow * 1e3:12.1f}ms{slow / fast:9.0f}x")


if __name__ == "__main__":
    main()
