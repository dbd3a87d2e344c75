"""Hand-computed mechanics: queueing, cold start, billing, spot, dispatch, Prometheus lag."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elastic_tts.simulator.cluster import CAPACITY_WEIGHTED, ROUND_ROBIN, Cluster, SpotConditions
from elastic_tts.simulator.engine import simulate
from elastic_tts.simulator.prometheus import PrometheusView
from elastic_tts.simulator.trace import Trace

from .helpers import Scripted, drive, pool, spec_of, steady_trace, trace_of

NO_SPOT = SpotConditions(interruptions_per_hour=0.0)


def run(spec, trace, plan, interval=1.0, dispatch=CAPACITY_WEIGHTED, spot=NO_SPOT):
    return simulate(trace, spec, Scripted(plan, interval), dispatch=dispatch, spot=spot, seed=0)


@pytest.mark.parametrize(
    ("label", "times", "chars", "expected"),
    [
        # one replica at 100 chars/s: service = chars / 100, FIFO wait for the slot
        ("idle replica", [0.0], [100], [1.0]),
        ("second waits for the first", [0.0, 0.5], [100, 100], [1.0, 1.5]),
        ("long text served slower", [0.0, 3.0], [300, 50], [3.0, 0.5]),
        ("queue of three", [0.0, 0.0, 0.0], [100, 100, 100], [1.0, 2.0, 3.0]),
    ],
)
def test_queueing_on_one_replica(label, times, chars, expected):
    spec = spec_of({"gpu": pool()})
    result = run(spec, trace_of(times, chars), lambda now: {"gpu": 1})
    assert result.latency.tolist() == pytest.approx(expected), label


def test_concurrency_slots_share_the_throughput():
    # 2 slots at 100 chars/s in all: each slot serves 50 chars/s
    spec = spec_of({"gpu": pool(concurrency=2)}, latencySLOSeconds=5)
    result = run(spec, trace_of([0.0, 0.0, 0.0], [100, 100, 100]), lambda now: {"gpu": 1})
    assert result.latency.tolist() == pytest.approx([2.0, 2.0, 4.0])


def test_cold_start_holds_requests_until_ready_and_bills_from_the_request():
    # Asked for at t=10 (interval 10), Ready at 40; the request at 5 waits until then.
    spec = spec_of({"gpu": pool(cold=30.0)})
    trace = trace_of([5.0, 99.0])
    result = run(spec, trace, lambda now: {"gpu": 0 if now < 10 else 1}, interval=10.0)
    assert result.latency.tolist() == pytest.approx([36.0, 1.0])
    # billed from t=10 to the end of the trace (second 100), $0.001 per second
    assert result.cost == pytest.approx(0.090)
    assert result.replica_seconds == pytest.approx((90.0,))
    assert result.scale_events == 1


def test_billing_runs_until_a_removed_replica_has_drained():
    spec = spec_of({"gpu": pool()})
    # two replicas from the start; at t=20 one is removed while busy until 25
    # Two replicas from the start; the scale-down to one comes at t=20.
    trace = trace_of([15.0] * 10 + [39.0])
    idle = run(spec, trace, lambda now: {"gpu": 2 if now < 20 else 1})
    # 10 requests of 1 s from 15 on two replicas: both free again at 20, so the removed
    # one is billed 0-20 and the kept one 0-40 (the end of the trace)
    assert idle.cost == pytest.approx((20 + 40) * 0.001)
    busy = run(spec, trace_of([19.0] * 12 + [39.0]), lambda now: {"gpu": 2 if now < 20 else 1})
    # 12 requests from 19: each replica has 6 s of work, so the removed one drains until 25
    assert busy.cost == pytest.approx((25 + 40) * 0.001)


def interrupted_at_one_second(trace: Trace, notice: float) -> Cluster:
    """One on-demand and one spot replica, Ready from 0; the spot one is interrupted at 1 s."""
    spec = spec_of({"od": pool(), "spot": pool(capacityType="spot", price=1.8, cold=60.0)})
    cluster = Cluster(spec.pools, trace.times, trace.chars, ROUND_ROBIN,
                      SpotConditions(0.0, notice_seconds=notice), seed=0, instant=True)
    cluster.scale("od", 1, 0.0)
    cluster.scale("spot", 1, 0.0)
    cluster.instant = False
    cluster.interrupt_at("spot", 1.0)
    drive(cluster, trace, 10)
    return cluster


def test_spot_interruption_with_notice_drains_then_kills_and_resends_the_rest():
    # 2 s each; round-robin puts 0,2,4,6 on od and 1,3,5,7 on spot
    cluster = interrupted_at_one_second(trace_of([0.0] * 8, [200] * 8), notice=3.0)
    # spot's requests finish at 2,4,6,8; killed at 1+3=4: 5 and 7 are lost and resent at
    # 4 to od, whose queue runs until 8: they finish at 10 and 12
    assert cluster.finish.tolist() == pytest.approx([2, 2, 4, 4, 6, 10, 8, 12])
    states = cluster.states(10.0)
    assert states["spot"].interrupted == 1
    assert states["spot"].current == 1  # the Deployment's replacement, cold-starting
    assert states["spot"].ready == 0
    assert cluster.states(10.0)["spot"].interrupted == 0  # counted once per look


def test_spot_interruption_without_notice_resends_in_flight_work_at_once():
    cluster = interrupted_at_one_second(trace_of([0.0, 0.0], [300, 300]), notice=0.0)
    assert cluster.finish.tolist() == pytest.approx([3.0, 6.0])  # resent at 1, od free at 3


def test_spot_interruptions_are_poisson_at_the_configured_rate():
    spec = spec_of({"spot": pool(capacityType="spot", cold=0.0)})
    trace = steady_trace(0.01, 36_000)
    result_counts = []
    for seed in (1, 2):
        cluster = Cluster(spec.pools, trace.times, trace.chars, CAPACITY_WEIGHTED,
                          SpotConditions(interruptions_per_hour=0.5, notice_seconds=0.0),
                          seed=seed)
        cluster.scale("spot", 20, 0.0)
        interrupted = 0
        for hour in range(10):
            cluster.run_events((hour + 1) * 3600.0)
            interrupted += cluster.states((hour + 1) * 3600.0)["spot"].interrupted
        result_counts.append(interrupted)
    # 20 replicas x 10 h x 0.5/h = 100 expected; replacements keep 20 running
    assert all(70 <= n <= 130 for n in result_counts), result_counts
    assert result_counts[0] != result_counts[1]


def test_spot_shortage_leaves_replicas_pending_until_it_ends():
    spec = spec_of({"spot": pool(capacityType="spot", cold=30.0)})
    trace = trace_of([0.0])
    cluster = Cluster(spec.pools, trace.times, trace.chars, CAPACITY_WEIGHTED,
                      SpotConditions(0.0, 0.0, shortages=((100.0, 400.0),)), seed=0)
    cluster.scale("spot", 2, 150.0)
    cluster.run_events(300.0)
    state = cluster.states(300.0)["spot"]
    assert (state.current, state.ready, state.pending) == (2, 0, 2)
    assert state.pending_seconds == pytest.approx(150.0)
    cluster.run_events(430.0)
    assert cluster.states(430.0)["spot"].ready == 0  # started at 400, Ready at 430
    cluster.run_events(431.0)
    assert cluster.states(431.0)["spot"].ready == 2


@pytest.mark.parametrize(("dispatch", "shares"),
                         [(CAPACITY_WEIGHTED, (300, 100)), (ROUND_ROBIN, (200, 200))])
def test_dispatch_spreads_by_capacity_or_round_robin(dispatch, shares):
    spec = spec_of({"fast": pool(throughput=75.0), "slow": pool("cpu", throughput=25.0)},
                   latencySLOSeconds=5)
    trace = steady_trace(4.0, 100, chars=1)
    cluster = Cluster(spec.pools, trace.times, trace.chars, dispatch, NO_SPOT, 0, instant=True)
    cluster.scale("fast", 1, 0.0)
    cluster.scale("slow", 1, 0.0)
    drive(cluster, trace, 100)
    assert (cluster.by_name["fast"].served, cluster.by_name["slow"].served) == shares


def test_prometheus_rates_lag_by_the_scrape_and_the_window():
    # 10 chars/s until t=600, then 100 chars/s
    times = [float(t) for t in range(600)] + [600 + i / 10 for i in range(6000)]
    chars = [10] * 600 + [10] * 6000
    view = PrometheusView(trace_of(times, chars))
    assert view.rate("characters", 614.9, 60) == pytest.approx(10.0)  # newest scrape: 600
    # scrape at 615 sees 15 s at 100 and 30 s at 10 within its 45 s of samples
    assert view.rate("characters", 615.0, 60) == pytest.approx((15 * 100 + 30 * 10) / 45)
    assert view.rate("characters", 645.0, 60) == pytest.approx(100.0)
    assert view.rate("characters", 645.0, 300) == pytest.approx((45 * 100 + 240 * 10) / 285)
    assert view.rate("requests", 645.0, 60) == pytest.approx(10.0)
    # before the trace: primed with the first five minutes' rate
    assert view.rate("characters", 0.0, 300) == pytest.approx(10.0)


def test_the_controller_sees_the_lagged_view():
    spec = spec_of({"gpu": pool()})
    times = [float(t) for t in range(600)] + [600 + i / 10 for i in range(600)]
    policy = Scripted(lambda now: {"gpu": 2}, interval=15.0)
    simulate(trace_of(times, 10), spec, policy, dispatch=CAPACITY_WEIGHTED, spot=NO_SPOT,
             seed=0)
    seen = {view.now: view.short_rate for view in policy.views}
    assert seen[600.0] == pytest.approx(10.0)
    assert seen[615.0] == pytest.approx((15 * 100 + 30 * 10) / 45)
    assert math.isclose(seen[645.0], 100.0)
    assert policy.views[1].pools["gpu"].ready == 2


def test_requests_never_served_count_as_infinite_latency():
    spec = spec_of({"gpu": pool()})
    result = run(spec, trace_of([1.0, 2.0]), lambda now: {"gpu": 0})
    assert np.isinf(result.latency).all()
    assert result.cost == 0.0
