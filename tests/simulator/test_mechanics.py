"""Hand-computed mechanics: the worker's admission, client retries, cold start, billing,
spot (interruptions, waves, shortages, Karpenter's spill-over), dispatch, Prometheus lag."""

from __future__ import annotations

import math

import numpy as np
import pytest

from elastic_tts.simulator.cluster import (
    ROUTE,
    SERVICE,
    ReplicaBehaviour,
    SpotConditions,
    WorkerModel,
)
from elastic_tts.simulator.engine import simulate
from elastic_tts.simulator.prometheus import TraceRates

from .helpers import Scripted, cluster_of, drive, pool, spec_of, steady_trace, trace_of

NO_SPOT = SpotConditions(interruptions_per_hour=0.0)


def run(spec, trace, plan, interval=1.0, dispatch=SERVICE, spot=NO_SPOT, worker=None):
    return simulate(trace, spec, Scripted(plan, interval), dispatch=dispatch, spot=spot, seed=0,
                    worker=worker)


@pytest.mark.parametrize(
    ("label", "times", "chars", "expected"),
    [
        # one replica at 100 chars/s, SLO 5 s per 100 characters
        ("idle replica", [0.0], [100], [1.0]),
        ("second waits for the first", [0.0, 0.5], [100, 100], [1.0, 1.5]),
        ("long text served slower", [0.0, 3.0], [300, 50], [3.0, 0.5]),
        ("five fit in the first one's SLO", [0.0] * 5, [100] * 5, [1.0, 2.0, 3.0, 4.0, 5.0]),
        # the sixth would wait 5 s for a 1 s synthesis against a 5 s budget: 429 with
        # Retry-After ceil(5 - 4) = 1; at 1 s it waits 4 s and fits: answered at 6 s
        ("the sixth is refused and retried", [0.0] * 6, [100] * 6,
         [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        # a 500-character text has a 25 s budget: admitted behind 20 s of work
        ("a long text's budget is longer", [0.0] * 5 + [0.0], [100] * 4 + [400, 500],
         [1.0, 2.0, 3.0, 4.0, 8.0, 13.0]),
    ],
)
def test_admission_on_one_replica(label, times, chars, expected):
    spec = spec_of({"gpu": pool()})
    result = run(spec, trace_of(times, chars), lambda now: {"gpu": 1})
    assert result.latency.tolist() == pytest.approx(expected), label


# The sixth request at 0 is refused until the backlog ahead drains enough (at 1 s). A client
# that reads retry-after-ms retries after min(drain, 0.1 s x 2^attempt): at 0.1 (min(1, 0.1)),
# 0.3 (min(0.9, 0.2)), 0.7 (min(0.7, 0.4)) and 1.0 (min(0.3, 0.8)): four refusals. One that
# reads only Retry-After waits the whole second once.
HINTED = [(WorkerModel(), 4), (WorkerModel(retry_hint=False), 1)]


@pytest.mark.parametrize(("worker", "refusals"), HINTED)
def test_a_refusal_is_counted_apart_and_the_request_once(worker, refusals):
    spec = spec_of({"gpu": pool()})
    result = run(spec, trace_of([0.0] * 6), lambda now: {"gpu": 1}, worker=worker)
    assert result.latency.tolist() == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert result.refusals == refusals
    assert result.attempts == 6 + refusals  # six first attempts and one retry per refusal


def test_concurrency_slots_share_the_throughput():
    # 2 slots at 100 chars/s in all: each slot serves 50 chars/s; the third waits
    # W = (2 + 2) / 2 = 2 s and takes T = 2 s: 4 s fits the 5 s budget
    spec = spec_of({"gpu": pool(concurrency=2)}, latencySLOSeconds=5)
    result = run(spec, trace_of([0.0, 0.0, 0.0], [100, 100, 100]), lambda now: {"gpu": 1})
    assert result.latency.tolist() == pytest.approx([2.0, 2.0, 4.0])


@pytest.mark.parametrize(("hint", "refusals"), [(True, 4), (False, 1)])
def test_a_full_queue_refuses_until_a_queued_request_starts(hint, refusals):
    # max_queue 1: the second waits in the queue, the third finds it full until the queued
    # one starts (1 s; retried at 0.1, 0.3, 0.7, 1.0 with the hint, at 1 s without); then
    # it waits 1 s more and takes 1 s: done at 3 s
    spec = spec_of({"gpu": pool()})
    result = run(spec, trace_of([0.0, 0.0, 0.0]), lambda now: {"gpu": 1},
                 worker=WorkerModel(max_queue=1, retry_hint=hint))
    assert result.latency.tolist() == pytest.approx([1.0, 2.0, 3.0])
    assert result.refusals == refusals


def test_no_ready_endpoint_refuses_the_connection_and_the_client_retries_each_second():
    # Asked for at t=10 (interval 10), Ready at 40; the request at 5 is retried every
    # second and answered from 40.
    spec = spec_of({"gpu": pool(cold=30.0)})
    trace = trace_of([5.0, 99.0])
    result = run(spec, trace, lambda now: {"gpu": 0 if now < 10 else 1}, interval=10.0)
    assert result.latency.tolist() == pytest.approx([36.0, 1.0])
    # billed from t=10 to the end of the trace (second 100), $0.001 per second
    assert result.cost == pytest.approx(0.090)
    assert result.replica_seconds == pytest.approx((90.0,))
    assert result.scale_events == 1


def test_a_client_gives_up_sixty_seconds_after_its_first_attempt():
    spec = spec_of({"gpu": pool(cold=70.0)})
    result = run(spec, trace_of([1.0, 200.0]), lambda now: {"gpu": 1 if now >= 2 else 0},
                 interval=1.0)
    assert math.isinf(result.latency[0])  # Ready only at 72: the client left at 61
    assert result.latency[1] == pytest.approx(1.0)


def test_billing_runs_until_a_removed_replica_has_drained():
    spec = spec_of({"gpu": pool()})
    # Two replicas from the start; the scale-down to one comes at t=20. Four 1 s requests
    # at 15 s are done by 19 wherever they land, so the removed one is billed 0-20 and the
    # kept one 0-40 (the end of the trace).
    trace = trace_of([15.0] * 4 + [39.0])
    idle = run(spec, trace, lambda now: {"gpu": 2 if now < 20 else 1})
    assert idle.cost == pytest.approx((20 + 40) * 0.001)


def test_spot_interruption_with_notice_drains_then_kills_and_the_clients_retry():
    # One spot replica (200 chars: 2 s each, 10 s budget): five admitted at 0 (the fifth
    # waits 8 s), the sixth refused with Retry-After 2. Interrupted at 1 with a 3 s
    # notice: out of the endpoints at once, the Deployment asks for a replacement (10 s
    # cold start: Ready at 11), and at 4 the node goes: the three not done by then are
    # lost. Every client retries each second until 11, then they queue in retry order.
    spec = spec_of({"spot": pool(capacityType="spot", cold=10.0)})
    trace = trace_of([0.0] * 6, [200] * 6)
    cluster = cluster_of(spec, trace, spot=SpotConditions(0.0, notice_seconds=3.0))
    cluster.start_ready("spot", 1, 0.0)
    cluster.interrupt_at("spot", 1.0)
    drive(cluster, trace, 30)
    assert cluster.finish.tolist() == pytest.approx([2, 4, 13, 15, 17, 19])
    states = cluster.states(30.0)
    assert states["spot"].interrupted == 1
    assert (states["spot"].current, states["spot"].ready) == (1, 1)
    assert cluster.states(30.0)["spot"].interrupted == 0  # counted once per look


def test_every_spot_replica_draws_interruptions_those_running_at_the_start_too():
    spec = spec_of({"spot": pool(capacityType="spot", cold=0.0)})
    trace = steady_trace(0.01, 36_000)
    counts = []
    for seed in (1, 2):
        cluster = cluster_of(spec, trace, spot=SpotConditions(0.5, notice_seconds=0.0),
                             seed=seed)
        cluster.start_ready("spot", 20, 0.0)
        interrupted = 0
        for hour in range(10):
            cluster.run_events((hour + 1) * 3600.0)
            interrupted += cluster.states((hour + 1) * 3600.0)["spot"].interrupted
        counts.append(interrupted)
    # 20 replicas x 10 h x 0.5/h = 100 expected; replacements keep 20 running
    assert all(70 <= n <= 130 for n in counts), counts
    assert counts[0] != counts[1]


def test_a_wave_takes_its_share_of_the_spot_replicas_within_its_spread():
    spec = spec_of({"spot": pool(capacityType="spot", cold=0.0), "od": pool()})
    trace = trace_of([0.0])
    spot = SpotConditions(0.0, notice_seconds=0.0, waves=(100.0,), wave_fraction=1.0,
                          wave_spread_seconds=60.0)
    cluster = cluster_of(spec, trace, spot=spot)
    cluster.start_ready("spot", 10, 0.0)
    cluster.start_ready("od", 3, 0.0)
    cluster.run_events(100.0)
    assert cluster.states(100.0)["spot"].interrupted == 0
    cluster.run_events(161.0)
    states = cluster.states(161.0)
    assert states["spot"].interrupted == 10 and states["od"].interrupted == 0
    assert [kind for _, _, kind in cluster.spot_events].count("wave") == 1


def test_spot_shortage_leaves_replicas_pending_until_it_ends():
    spec = spec_of({"spot": pool(capacityType="spot", cold=30.0)})
    trace = trace_of([0.0])
    cluster = cluster_of(spec, trace, spot=SpotConditions(0.0, 0.0, shortages=((100.0, 400.0),)))
    cluster.scale("spot", 2, 150.0)
    cluster.run_events(300.0)
    state = cluster.states(300.0)["spot"]
    assert (state.current, state.ready, state.pending) == (2, 0, 2)
    assert state.pending_seconds == pytest.approx(150.0)
    cluster.run_events(430.0)
    assert cluster.states(430.0)["spot"].ready == 0  # started at 400, Ready at 430
    cluster.run_events(431.0)
    assert cluster.states(431.0)["spot"].ready == 2


def test_a_replica_pending_in_a_spot_shortage_is_billed_only_once_its_node_launches():
    # Two spot replicas asked for at 150 in a shortage that ends at 400: no node exists
    # until then, so each is billed 400-500. A third, asked for at 160 and removed at 300
    # while still Pending, never had a node and costs nothing.
    spec = spec_of({"spot": pool(capacityType="spot", cold=30.0)})
    cluster = cluster_of(spec, trace_of([0.0]),
                         spot=SpotConditions(0.0, 0.0, shortages=((100.0, 400.0),)))
    cluster.scale("spot", 2, 150.0)
    cluster.scale("spot", 3, 160.0)
    cluster.run_events(300.0)
    cluster.scale("spot", 2, 300.0)
    assert cluster.counts()[0] == (0,)  # Pending in the shortage: nothing paid for yet
    cluster.run_events(401.0)
    assert cluster.counts()[0] == (2,)
    cluster.close(500.0)
    assert cluster.cost == pytest.approx(2 * 100 * 0.001)
    assert cluster.pools[0].replica_seconds == pytest.approx(200.0)


def test_karpenter_launches_on_demand_when_spot_is_short_and_never_moves_back():
    spec = spec_of({"spot": pool(capacityType="spot", cold=0.0), "od": pool(cold=0.0)})
    trace = trace_of([0.0])
    cluster = cluster_of(spec, trace, spot=SpotConditions(0.0, 0.0, shortages=((10.0, 20.0),)))
    cluster.spill("spot", "od")
    cluster.scale_together(("spot", "od"), 2, 0.0)  # spot has capacity
    cluster.scale_together(("spot", "od"), 5, 15.0)  # short: the three new ones on-demand
    cluster.run_events(30.0)
    states = cluster.states(30.0)
    assert (states["spot"].current, states["od"].current) == (2, 3)
    cluster.scale_together(("spot", "od"), 6, 40.0)  # spot is back: the new one on spot
    states = cluster.states(40.0)
    assert (states["spot"].current, states["od"].current) == (3, 3)


@pytest.mark.parametrize(("dispatch", "weights", "fast_share"),
                         [(SERVICE, None, 0.5), (ROUTE, {"fast": 3, "slow": 1}, 0.75)])
def test_dispatch_is_random_per_connection(dispatch, weights, fast_share):
    spec = spec_of({"fast": pool(throughput=75.0), "slow": pool("cpu", throughput=25.0)},
                   latencySLOSeconds=5)
    trace = steady_trace(4.0, 1000, chars=1)
    cluster = cluster_of(spec, trace, dispatch=dispatch, instant=True)
    cluster.start_ready("fast", 1, 0.0)
    cluster.start_ready("slow", 1, 0.0)
    if weights:
        cluster.set_route_weights(weights)
    drive(cluster, trace, 1000)
    fast = cluster.by_name["fast"].offered_requests
    assert fast / trace.requests == pytest.approx(fast_share, abs=0.03)
    assert cluster.by_name["slow"].offered_requests + fast == trace.requests


def test_a_route_backend_without_ready_endpoints_answers_503_and_the_client_retries():
    spec = spec_of({"a": pool(), "b": pool()})
    trace = trace_of([0.0])
    cluster = cluster_of(spec, trace, dispatch=ROUTE)
    cluster.start_ready("a", 1, 0.0)
    cluster.set_route_weights({"b": 1})  # stale weights: b has nothing Ready
    for second in range(8):
        if second == 3:
            assert cluster.tries[0] == 3 and math.isinf(cluster.finish[0])
            cluster.set_route_weights({"a": 1})  # the next tick's weights
        cluster.run_events(second + 1)
        cluster.send(0, 1 if second == 0 else 0, second)
    assert cluster.finish[0] == pytest.approx(4.0)  # retried at 3, served in 1 s
    assert cluster.by_name["a"].offered_requests == 0  # it reached a worker as a retry


def test_the_controller_sees_the_workers_counters_scraped_and_lagged():
    # 10 chars/s until t=600, then 100 chars/s, all admitted by two idle replicas
    spec = spec_of({"gpu": pool()})
    times = [float(t) for t in range(600)] + [600 + i / 10 for i in range(600)]
    policy = Scripted(lambda now: {"gpu": 2}, interval=15.0)
    simulate(trace_of(times, 10), spec, policy, dispatch=SERVICE, spot=NO_SPOT, seed=0)
    seen = {view.now: view for view in policy.views}
    assert seen[600.0].short_rate == pytest.approx(10.0)  # newest scrape: 600
    # the scrape at 615 sees 15 s at 100 and 30 s at 10 within its 45 s of samples
    assert seen[615.0].short_rate == pytest.approx((15 * 100 + 30 * 10) / 45)
    assert math.isclose(seen[645.0].short_rate, 100.0)
    assert seen[645.0].long_rate == pytest.approx((45 * 100 + 240 * 10) / 285)
    assert seen[645.0].burst_rate == pytest.approx(100.0)
    assert seen[645.0].requests_rate == pytest.approx((45 * 10 + 240 * 1) / 285)
    assert seen[645.0].refused_share == 0.0
    assert policy.views[0].short_rate == pytest.approx(10.0)  # primed: the first 5 minutes
    assert policy.views[1].pools["gpu"].ready == 2


def test_the_backlog_gauge_is_what_is_admitted_and_not_yet_synthesised():
    spec = spec_of({"gpu": pool()})
    trace = trace_of([1.0] * 4, [100] * 4)  # 4 s of work at 1.0
    policy = Scripted(lambda now: {"gpu": 1}, interval=15.0)
    simulate(trace, spec, policy, dispatch=SERVICE, spot=NO_SPOT, seed=0)
    # nothing at the scrape at 0; the 15 s scrape comes after the work is done
    assert [v.backlog_characters for v in policy.views] == [0.0]


def test_requests_never_served_count_as_infinite_latency():
    spec = spec_of({"gpu": pool()})
    result = run(spec, trace_of([1.0, 2.0]), lambda now: {"gpu": 0})
    assert np.isinf(result.latency).all()
    assert result.cost == 0.0


def test_a_service_idle_before_the_trace_starts_cold():
    # the e2e's load step: nothing ran before it, so the first views see no load
    spec = spec_of({"gpu": pool()})
    trace = trace_of([float(t) for t in range(60)], 10)
    policy = Scripted(lambda now: {"gpu": 1}, interval=15.0)
    simulate(trace, spec, policy, dispatch=SERVICE, spot=NO_SPOT, seed=0,
             rates=TraceRates(trace, warm=False))
    assert policy.views[0].short_rate == 0.0
    assert policy.views[0].long_rate == 0.0
    # the default 45 s of samples at 15 s: 15 s of load (scrapes 0 and 15), 30 s of none
    assert policy.views[1].short_rate == pytest.approx(15 * 10 / 45)


def test_replicas_behave_as_measured_while_the_policy_plans_with_the_spec():
    declared = spec_of({"gpu": pool(throughput=100.0, cold=30.0)})
    measured = {"gpu": ReplicaBehaviour(throughput=50.0, cold_start_seconds=10.0)}
    trace = trace_of([12.0, 13.0], [100, 50])
    policy = Scripted(lambda now: {"gpu": 0 if now < 1 else 1})
    # asked for at 1, Ready at 1 + 10 (not 1 + 30); 100 characters take 2 s (not 1 s)
    result = simulate(trace, declared, policy, dispatch=SERVICE, spot=NO_SPOT, seed=0,
                      replicas=measured)
    assert result.latency.tolist() == pytest.approx([2.0, 2.0])  # the second waits 1 s
    as_declared = simulate(trace, declared, Scripted(lambda now: {"gpu": 0 if now < 1 else 1}),
                           dispatch=SERVICE, spot=NO_SPOT, seed=0)
    # as declared, the replica is Ready only at 31 s: both are answered after that
    assert (as_declared.latency + trace.times > 31.0).all()


def test_a_replica_pending_for_part_of_its_cold_start_is_seen_pending():
    spec = spec_of({"gpu": pool(cold=30.0)})
    measured = {"gpu": ReplicaBehaviour(100.0, cold_start_seconds=10.0, pending_seconds=4.0)}
    policy = Scripted(lambda now: {"gpu": 0 if now < 1 else 1})
    result = simulate(trace_of([20.0]), spec, policy, dispatch=SERVICE, spot=NO_SPOT, seed=0,
                      replicas=measured)
    seen = {view.now: view.pools["gpu"] for view in policy.views}
    assert (seen[2.0].pending, seen[2.0].pending_seconds) == (1, 1.0)
    assert (seen[4.0].pending, seen[4.0].pending_seconds) == (1, 3.0)
    assert (seen[5.0].pending, seen[5.0].ready) == (0, 0)  # started at 5, not Ready yet
    assert seen[11.0].ready == 1  # asked for at 1, Ready at 1 + 10
    assert result.latency.tolist() == pytest.approx([1.0])
