"""The loop closes: real requests raise the workers' counters, Prometheus rates them, the
operator scales the Deployments, the scheduler binds the new pods, the kubelet starts
(or drains) real workers, the EndpointSlice controller adds (or removes) them behind the
Service, and the load lands on them. Load steps up, then down; capacity follows each way
within its bounds, the operator's decisions are the ones the simulator predicts from
the same observations, and the clients' latency is the one the simulator predicts when
fed what the run measured (tests/e2e/fidelity.py).
"""

from __future__ import annotations

import time

import pytest

from elastic_tts.policy import parse_spec
from elastic_tts.policy.decide import demand_window
from elastic_tts_dev.prometheus import Prometheus
from tests.e2e.checks import capacity_drops_below_demand
from tests.e2e.conftest import LoopFactory
from tests.e2e.fidelity import TOLERANCE, Agreement, measure, simulate_closed, simulate_open
from tests.e2e.loadgen import LoadGenerator, compressed_day, steps
from tests.e2e.loop import Loop, Tick
from tests.e2e.observer import POLL, CapacitySample
from tests.e2e.promql import served_within
from tests.e2e.replay import gaps, replay
from tests.e2e.report import REPORT
from tests.e2e.specs import DOWN_WINDOW, INTERVAL, e2e_service
from tests.operator.cluster import wait_for

LOW, HIGH = 12.0, 100.0  # offered characters per second
CHARS = 20  # per request
LOW_SECONDS, HIGH_SECONDS, FALL_SECONDS = 12.0, 26.0, 30.0
LONG_RATE_WINDOW = 8.0  # the operator's --rate-windows 4s,8s: the slower one to let go
SCRAPE = 1.0


def samples(loop: Loop) -> list[CapacitySample]:
    return list(loop.observer.capacity)


def capacity_at(loop: Loop, when: float) -> float:
    counts: dict[str, int] = {}
    for sample in samples(loop):
        if sample.at > when:
            break
        counts = sample.ready
    return loop.ready_capacity(counts)


def first_time_capacity_reaches(loop: Loop, after: float, level: float) -> float | None:
    for sample in samples(loop):
        if sample.at >= after and loop.ready_capacity(sample.ready) >= level - 1e-9:
            return sample.at
    # The capacity may already have been there before `after`.
    return after if capacity_at(loop, after) >= level - 1e-9 else None


def decided_capacity(loop: Loop, tick: Tick) -> float:
    return loop.ready_capacity(tick.replicas)


@pytest.mark.timeout(300)
def test_capacity_follows_load_up_and_down(make_loop: LoopFactory,
                                           e2e_prometheus: Prometheus) -> None:
    figures = REPORT.scenario("load step (fast)")
    loop = make_loop(lambda nodes: e2e_service("step", e2e_prometheus.url, nodes))
    wait_for("the cpu floor Ready", lambda: loop.ready_counts().get("cpu"), 60)

    load = LoadGenerator(loop.endpoints).start(
        steps([(LOW_SECONDS, LOW), (HIGH_SECONDS, HIGH), (FALL_SECONDS, LOW)], CHARS))
    origin = time.time()
    rise, fall = origin + LOW_SECONDS, origin + LOW_SECONDS + HIGH_SECONDS
    stats = load.wait(LOW_SECONDS + HIGH_SECONDS + FALL_SECONDS + 60)
    end = time.time()
    ticks = [t for t in loop.recorder.ticks if t.at >= origin - INTERVAL]

    REPORT.add_load(figures, stats)
    REPORT.add_scaling(figures, loop.observer.scale_actions, origin)
    # What the simulator predicts for these requests, fed only what this run measured
    # (tests/e2e/fidelity.py); asserted at the end, after the loop's own checks.
    measured = measure(stats, loop.endpoints.history, loop.recorder.ticks,
                       loop.kubelet.record.running, origin, loop.pool_of,
                       loop.service["spec"]["pools"])
    agreement = Agreement.of(measured, simulate_closed(loop.service, measured),
                             simulate_open(loop.service, measured))
    figures.fidelity = agreement.record()
    figures.notes.append(agreement.note())
    within, served = served_within(e2e_prometheus.url, "step", "3.0", end - origin + 5)
    figures.slo_worker = within / served if served else None

    # Up: from the first tick that saw the whole new load, the Deployments ask for the
    # capacity that covers it within two intervals (the operator's part), and that
    # capacity is Ready once the cluster has delivered its pods: the slowest delivery of
    # this run, from a pool's scale-up to its pod's Ready (controllers, scheduler,
    # kubelet, the worker's cold start, probes), which on a loaded 2-core machine can be
    # several times the worker's own cold start.
    high_demand = max(t.demand for t in ticks if rise <= t.at <= fall)
    seen = next(t for t in ticks if t.at >= rise and t.demand >= 0.95 * high_demand)
    level = min(seen.demand, decided_capacity(loop, seen))
    asked = first_time_desired_reaches(loop, seen.at, level)
    covered = first_time_capacity_reaches(loop, seen.at, level)
    assert asked is not None and covered is not None, "capacity never reached the demand"
    delivery = max(d.seconds for d in loop.observer.deliveries if d.ready <= covered + POLL)
    cold = max(loop.kubelet.record.cold_starts)
    story = (f"seen t+{seen.at - origin:.1f}s, asked {asked - seen.at:.1f}s later, Ready "
             f"{covered - seen.at:.1f}s later; slowest delivery {delivery:.1f}s, slowest "
             f"worker cold start {cold:.1f}s")
    assert asked - seen.at <= 2 * INTERVAL + POLL, story
    bound = 2 * INTERVAL + delivery + 2 * POLL
    assert covered - seen.at <= bound, story
    figures.notes.append(
        f"load {LOW:g} -> {HIGH:g} chars/s at t+{LOW_SECONDS:g}s: operator saw it at "
        f"t+{seen.at - origin:.1f}s, the Deployments asked for it {asked - seen.at:.1f}s "
        f"later (bound {2 * INTERVAL:g}s = 2 intervals), Ready capacity covered it "
        f"{covered - seen.at:.1f}s later (bound {bound:.1f}s: + slowest pod delivery "
        f"{delivery:.1f}s, worker cold start {cold:.1f}s of it)")

    # Down: the first decision with less capacity comes only once the scale-down window
    # holds no demand above what it keeps; the Ready workers then really go. The demand
    # is held for the shortest pool window (one cold start, at least two intervals, at
    # most scaleDownStabilizationSeconds); each pool holds its own on top of that.
    window = demand_window(parse_spec(loop.service["spec"]))
    at_fall = decided_capacity(loop, [t for t in ticks if t.at <= fall][-1])
    down = next(t for t in ticks if t.at > fall and decided_capacity(loop, t) < at_fall)
    in_window = [t.demand for t in ticks if down.at - window < t.at <= down.at]
    assert max(in_window) <= decided_capacity(loop, down) + 1e-6
    last_high = max(t.at for t in ticks if t.demand > decided_capacity(loop, down))
    assert down.at - last_high >= window - 0.01, (down.at - last_high)
    low_capacity = decided_capacity(loop, ticks[-1])
    assert low_capacity < at_fall
    # The capacity goes one pool window after the last demand the engine saw above what it
    # keeps. That demand follows the load down within a scrape and the long rate window;
    # as the faster pools leave and the slower one takes every request, their backlog and
    # retries can lift it once more, within a pool window and two ticks of that.
    last_above = max((t.at for t in ticks if t.demand > low_capacity + 1e-6), default=fall)
    assert last_above <= fall + SCRAPE + LONG_RATE_WINDOW + DOWN_WINDOW + 2 * INTERVAL, (
        f"demand above {low_capacity:g} until {last_above - fall:.1f}s after the fall")
    let_go = (max(fall + SCRAPE + LONG_RATE_WINDOW, last_above) + DOWN_WINDOW + 2 * INTERVAL
              + 5.0)  # + margin
    released = first_time_capacity_reaches_down(loop, fall, low_capacity)
    assert released <= let_go, (
        f"capacity down to {low_capacity:g} {released - fall:.1f}s after the fall; the last "
        f"demand above it {last_above - fall:.1f}s after, bound {let_go - fall:.1f}s")
    figures.notes.append(
        f"load back down at t+{fall - origin:.0f}s: first smaller decision at "
        f"t+{down.at - origin:.1f}s, {down.at - last_high:.1f}s after the last tick that "
        f"needed the peak capacity (window {window:g}s); capacity down to "
        f"{low_capacity:g} at t+{released - origin:.1f}s, the last demand above it at "
        f"t+{last_above - origin:.1f}s")

    # The engine decided what the simulator predicts from the same observations.
    assert not gaps(ticks), "the recorder missed ticks; the replay would not be faithful"
    all_ticks = loop.recorder.ticks
    disagreements = replay(loop.service["spec"], all_ticks)
    assert not disagreements, disagreements[:3]
    figures.notes.append(f"simulator replay: {len(all_ticks)} ticks, 0 disagreements")

    # The workers measured what the client saw, and nothing was lost.
    ok = sum(1 for r in stats.results if r.status == 200)
    # Prometheus' increase() misses each new worker series' first counts and what a worker
    # served after its last scrape before it exited; this loop starts and stops workers, so
    # the workers' count trails the client's by a varying amount (87-100 % seen). It must
    # never exceed it, and a broken pipeline (nothing, or half) still fails.
    assert 0.5 * ok < served <= ok * 1.02 + 3, (served, ok)
    assert not stats.lost, stats.lost[:5]

    # The simulator's client-side latency agrees with the measured one (issue 10 §1).
    assert not agreement.problems(TOLERANCE), (agreement.problems(TOLERANCE),
                                               agreement.note())


def first_time_desired_reaches(loop: Loop, after: float, level: float) -> float | None:
    """When, from `after` on, the Deployments first asked for `level` capacity units
    (`after` itself if they already did)."""
    desired: dict[str, int] = {}
    actions = list(loop.observer.scale_actions)
    for action in (a for a in actions if a.at <= after):
        desired[action.pool] = action.after
    if loop.ready_capacity(desired) >= level - 1e-9:
        return after
    for action in (a for a in actions if a.at > after):
        desired[action.pool] = action.after
        if loop.ready_capacity(desired) >= level - 1e-9:
            return action.at
    return None


def first_time_capacity_reaches_down(loop: Loop, after: float, level: float) -> float:
    for sample in samples(loop):
        if sample.at >= after and loop.ready_capacity(sample.ready) <= level + 1e-9:
            return sample.at
    raise AssertionError(f"Ready capacity never came down to {level}")


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_a_compressed_day(make_loop: LoopFactory, e2e_prometheus: Prometheus) -> None:
    """The built-in day in two and a half minutes: two peaks and a night, through the
    whole loop; nothing lost, decisions as the simulator predicts, the workers' SLO."""
    figures = REPORT.scenario("built-in day, compressed")
    loop = make_loop(lambda nodes: e2e_service("day", e2e_prometheus.url, nodes))
    wait_for("the cpu floor Ready", lambda: loop.ready_counts().get("cpu"), 60)
    arrivals, note = compressed_day(150.0, peak_chars_per_second=110.0)
    origin = time.time()
    stats = LoadGenerator(loop.endpoints).start(arrivals).wait(150 + 90)
    end = time.time()
    REPORT.add_load(figures, stats)
    REPORT.add_scaling(figures, loop.observer.scale_actions, origin)
    within, served = served_within(e2e_prometheus.url, "day", "3.0", end - origin + 5)
    figures.slo_worker = within / served if served else None
    figures.notes.append(note)

    assert not stats.lost, stats.lost[:5]
    assert len(loop.observer.scale_actions) >= 4  # up for the peaks, down for the night
    assert not capacity_drops_below_demand(loop)
    assert not gaps(loop.recorder.ticks)
    disagreements = replay(loop.service["spec"], loop.recorder.ticks)
    assert not disagreements, disagreements[:3]
    figures.notes.append(f"simulator replay: {len(loop.recorder.ticks)} ticks, "
                         "0 disagreements")
    assert served > 0
