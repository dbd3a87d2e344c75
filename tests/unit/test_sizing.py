"""The demand stage (policy/sizing.py) and the shared-dispatch rule, table-driven."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elastic_tts.policy import Memory, Observation, PoolState, decide
from elastic_tts.policy.decide import kept_out, slack
from elastic_tts.policy.sizing import (
    BURST_MIN_SAMPLES,
    DRIFT_DOWN,
    DRIFT_UP,
    EPISODE_GAP_SECONDS,
    RECURRING,
    REFUSAL_TARGET,
    START_REFUSALS,
    STEP_DOWN,
    STEP_UP,
    burst_sigma,
    capacity_short,
    episodes_after,
    expected_max,
    fitted_utilisation,
    independent_requests,
    model_utilisation,
    noise,
    recurring_level,
    refusal_step,
    size,
    wilson,
)
from tests.unit.specs import CPU, GPU, build, three_pools

T0 = 1_795_000_000.0


def sized(observation: Observation, memory: Memory | None = None, **scaling: Any):
    spec = build(three_pools(**scaling))
    return size(spec, observation, memory or Memory(), T0, ready_capacity=1e9,
                ready_slots=0, slack=3.0)


def test_noise_of_a_rate_is_poisson_in_requests_widened_by_length() -> None:
    # 1000 chars/s of 100-character texts over 60 s: 600 requests; with cv^2 = 1 the
    # variance doubles: sqrt(1000 * 100 * 2 / 60) = 57.7 chars/s.
    assert noise(1000.0, 100.0, 60.0, 1.0) == pytest.approx(math.sqrt(1000 * 100 * 2 / 60))


@pytest.mark.parametrize(
    ("label", "short", "long", "rate", "used_short"),
    [
        # band at 1000 chars/s (100 per request): 2 x 57.7 = 115 chars/s
        ("a short rate within its noise is ignored", 1100.0, 1000.0, 1000.0, False),
        ("a short rate above its noise is followed", 1200.0, 1000.0, 1200.0, True),
        ("a short rate below the long one never lowers it", 500.0, 1000.0, 1000.0, False),
        ("thin traffic has a wide band", 20.0, 10.0, 10.0, False),
    ],
)
def test_two_time_scales(label: str, short: float, long: float, rate: float,
                         used_short: bool) -> None:
    result = sized(Observation(short, long, requests_rate=long / 100))
    assert result.rate == pytest.approx(rate), label
    assert result.used_short is used_short, label
    assert result.demand == pytest.approx(rate / 0.7), label


def bursts_of(ratio: float, count: int) -> tuple[tuple[float, float], ...]:
    return tuple((T0 - 15 * (i + 1), ratio) for i in range(count))


@pytest.mark.parametrize(
    ("label", "history", "scaling", "headroom"),
    [
        ("no history yet", (), {}, 1.0),
        ("too little history", bursts_of(1.8, BURST_MIN_SAMPLES - 2), {}, 1.0),
        ("observed bursts: the highest", (*bursts_of(1.5, 59), (T0 - 1000, 1.7)), {}, 1.7),
        ("capped", bursts_of(5.0, 60), {}, 2.0),
        ("calm traffic never goes below 1", bursts_of(0.8, 60), {}, 1.0),
        ("the spec overrides", bursts_of(1.8, 60), {"burstHeadroom": 1.25}, 1.25),
        ("history older than an hour is forgotten",
         tuple((T0 - 3700 - i, 1.9) for i in range(60)), {}, 1.0),
    ],
)
def test_burst_headroom(label: str, history: tuple[tuple[float, float], ...],
                        scaling: dict[str, Any], headroom: float) -> None:
    result = sized(Observation(1000.0, 1000.0), Memory(bursts=history), **scaling)
    assert result.headroom == pytest.approx(headroom), label


def test_a_burst_sample_takes_its_own_noise_off() -> None:
    result = sized(Observation(1000.0, 1000.0, burst_rate=1300.0, requests_rate=10.0))
    band = 3 * noise(1000.0, 100.0, 15.0, 1.0)
    assert result.bursts[-1] == (T0, pytest.approx((1300.0 - band) / 1000.0))


def test_backlog_beyond_the_work_in_service_drains_within_the_slo() -> None:
    spec = build(three_pools())
    observation = Observation(100.0, 100.0, backlog_characters=2500.0)
    result = size(spec, observation, Memory(), T0, ready_capacity=1e9, ready_slots=5,
                  slack=3.0)
    # 5 slots hold 5 x 100 characters in service; the other 2000 drain in 10 s (the SLO)
    assert result.backlog_rate == pytest.approx(200.0)
    assert result.demand == pytest.approx((100.0 + 200.0) / 0.7)


@pytest.mark.parametrize(
    ("label", "burst", "ready", "panic"),
    [
        ("a burst over twice the ready capacity", 1500.0, 1000.0, True),
        ("a burst within it", 1300.0, 1000.0, False),
        ("nothing ready yet: the ordinary path scales up", 1500.0, 0.0, False),
    ],
)
def test_panic_trigger(label: str, burst: float, ready: float, panic: bool) -> None:
    spec = build(three_pools())
    result = size(spec, Observation(500.0, 500.0, burst_rate=burst), Memory(), T0,
                  ready_capacity=ready, ready_slots=0, slack=3.0)
    assert result.panic is panic, label
    if panic:
        assert result.demand == pytest.approx(burst / 0.7)
        assert result.panic_until == T0 + 60


def test_panic_holds_every_serving_pool_until_it_passes() -> None:
    spec = build(three_pools())
    running = {"gpu": PoolState(current=2, ready=2), "gpu-spot": PoolState(current=4, ready=4),
               "cpu": PoolState(current=3, ready=3)}
    hot = decide(spec, Observation(200.0, 200.0, running, burst_rate=2000.0), Memory(), T0)
    assert "panic" in hot.reason
    assert all(hot.replicas[n] >= running[n].current for n in running)
    # Panic lasts a scale-down window (the shortest pool's: cpu, 30 s) past the last burst.
    assert hot.memory.panic_until == T0 + 30
    calm = decide(spec, Observation(20.0, 20.0, running, burst_rate=20.0), hot.memory, T0 + 15)
    assert "panic" in calm.reason
    assert all(calm.replicas[n] >= running[n].current for n in running)
    later = decide(spec, Observation(20.0, 20.0, running, burst_rate=20.0), calm.memory, T0 + 30)
    assert "panic" not in later.reason


@pytest.mark.parametrize(
    ("label", "history", "at", "burst", "episodes"),
    [
        ("a reading under the threshold adds nothing", (), T0, 400.0, ()),
        ("one over it starts an episode", (), T0, 900.0, ((T0, 900.0, 0.0),)),
        ("within the gap it extends the newest: highest and second highest",
         ((T0 - 15, 900.0, 0.0),), T0, 700.0, ((T0, 900.0, 700.0),)),
        ("a higher reading moves the highest to second",
         ((T0 - 15, 700.0, 600.0),), T0, 900.0, ((T0, 900.0, 700.0),)),
        ("past the gap it starts another",
         ((T0 - EPISODE_GAP_SECONDS - 15, 900.0, 800.0),), T0, 800.0,
         ((T0 - EPISODE_GAP_SECONDS - 15, 900.0, 800.0), (T0, 800.0, 0.0))),
        ("episodes older than the hour are forgotten",
         ((T0 - 3700, 900.0, 900.0), (T0 - 600, 800.0, 700.0)), T0, 0.0,
         ((T0 - 600, 800.0, 700.0),)),
    ],
)
def test_burst_episodes(label: str, history: tuple[tuple[float, float, float], ...],
                        at: float, burst: float,
                        episodes: tuple[tuple[float, float, float], ...]) -> None:
    assert episodes_after(history, at, burst, threshold=500.0) == episodes, label


@pytest.mark.parametrize(
    ("label", "held", "level"),
    [
        ("no burst: no floor", (), 0.0),
        ("a one-off burst (a flash crowd) is not kept warm", (5000.0,), 0.0),
        ("two bursts: the level both held", (900.0, 600.0), 600.0),
        ("a one-off higher burst does not raise it", (600.0, 3000.0, 700.0), 700.0),
    ],
)
def test_recurring_level(label: str, held: tuple[float, ...], level: float) -> None:
    assert RECURRING == 2
    episodes = tuple((T0 - 600 * (i + 1), 2 * h, h) for i, h in enumerate(held))
    assert recurring_level(episodes) == level, label


def test_a_single_reading_is_not_a_level() -> None:
    # a spike of one ~15 s reading per episode: noise, or over before anything serves it
    assert recurring_level(((T0 - 900, 2000.0, 0.0), (T0 - 300, 2500.0, 0.0))) == 0.0


def idle(burst: float | None = 0.0, ready: float = 1e9) -> Any:
    """Near-idle load (5 chars/s on the long rate) after two bursts of 800 and 1000
    chars/s; the short rate is half the ~15 s one."""
    spec = build(three_pools())
    memory = Memory(episodes=((T0 - 1200, 1200.0, 1000.0), (T0 - 600, 900.0, 800.0)),
                    utilisation=0.2)
    short = max(5.0, (burst or 0.0) / 2)
    observation = Observation(short, 5.0, burst_rate=burst, refused_share=0.0,
                              requests_rate=0.05)
    return size(spec, observation, memory, T0, ready_capacity=ready, ready_slots=0,
                slack=3.0)


def test_recurring_bursts_keep_a_warm_floor_between_them() -> None:
    result = idle()
    assert result.floor == 800.0
    # at the utilisation the calibration aims for, above what it has learned so far
    warm = min(0.7, model_utilisation(3.0, REFUSAL_TARGET))
    assert warm > result.utilisation
    assert result.demand == pytest.approx(800.0 / warm)


def test_a_burst_the_floor_covers_is_not_chased() -> None:
    # 700 chars/s on 1,000 ready: more than twice the ready capacity at 20 % utilisation,
    # but the floor was sized for it, and what panic would order is Ready after it ends.
    covered = idle(burst=700.0, ready=1000.0)
    assert not covered.panic and not covered.used_short
    higher = idle(burst=1500.0, ready=1000.0)  # above the recurring level: chased
    assert higher.panic


def test_model_utilisation_matches_the_queueing_estimate() -> None:
    u = model_utilisation(3.17)
    assert u * math.exp(-(1 - u) * 3.17) == pytest.approx(START_REFUSALS, rel=1e-6)
    assert model_utilisation(1.0) < model_utilisation(3.0) < model_utilisation(10.0)
    assert model_utilisation(0.0) == 0.1  # no slack: the floor


@pytest.mark.parametrize(
    ("label", "share", "direction"),
    [
        ("refusing more than the target: lower", 0.30, -1),
        ("at the target: stay", REFUSAL_TARGET, 0),
        ("refusing nothing: higher", 0.0, 1),
    ],
)
def test_utilisation_follows_refusals(label: str, share: float, direction: int) -> None:
    start = Memory(utilisation=0.4)
    result = sized(Observation(1000.0, 1000.0, requests_rate=10.0, refused_share=share), start)
    assert (result.utilisation > 0.4) - (result.utilisation < 0.4) == direction, label
    assert 0.4 * 0.95 - 1e-9 <= result.utilisation <= 0.4 * 1.02 + 1e-9  # one bounded step


@pytest.mark.parametrize(
    ("label", "share", "requests", "evidence", "low", "high"),
    [
        # 6,000 smooth requests, 2 % refused: surely below 10 %, the largest step up
        ("many requests, few refusals: fast up", 0.02, 6000, 6000, STEP_UP, STEP_UP),
        ("many requests, none refused: fast up", 0.0, 6000, 6000, STEP_UP, STEP_UP),
        # 20 of them refused in 6,000: surely above, backs off fast
        ("many requests, 30 % refused: fast down", 0.3, 6000, 6000, STEP_DOWN, STEP_DOWN),
        # the same 6,000 in bursts worth 10 independent draws: the interval holds 10 %
        ("bursty, few refusals: only the drift", 0.02, 6000, 10, DRIFT_UP, DRIFT_UP),
        ("bursty, many refusals: only the drift", 0.3, 6000, 10, DRIFT_DOWN, DRIFT_DOWN),
        # 20 requests, none refused: the interval (0-31 %) holds 10 %; the drift's gain
        # is a hundredth of the full one
        ("twenty requests: a small drift", 0.0, 20, 20, 1.0 + 1e-6, 1.005),
        # 200, none refused: below 4.3 % at three sigma, a step of 4.3 %
        ("two hundred requests: a sure step", 0.0, 200, 200, 1.04, 1.045),
        ("at the target: no step", REFUSAL_TARGET, 6000, 6000, 1.0, 1.0),
    ],
)
def test_the_refusal_step_follows_the_evidence(label: str, share: float, requests: float,
                                               evidence: float, low: float,
                                               high: float) -> None:
    assert low - 1e-9 <= refusal_step(share, requests, evidence) <= high + 1e-9, label


def test_the_wilson_interval_narrows_with_the_draws() -> None:
    few, many = wilson(0.02, 50), wilson(0.02, 5000)
    assert few[0] <= many[0] <= 0.02 <= many[1] <= few[1]
    assert wilson(0.0, 5000)[1] == pytest.approx(9 / 5009)  # z^2 / (n + z^2) at zero


@pytest.mark.parametrize(
    ("label", "sigma", "seen", "expected"),
    [
        ("burstiness unknown yet: one draw", None, 6000, 1.0),
        ("smooth: every request", 0.0, 6000, 6000),
        # sigma 0.083 (a 1.25 peak in an hour); 300 requests a burst window: D = 3.08
        ("conversation-like", 0.25 / 3, 6000, 6000 / (1 + (0.25 / 3) ** 2 * 300)),
        # sigma 2.33 (an 8x peak); 45 requests a burst window: D = 246
        ("code-like bursts", 7 / 3, 900, 900 / (1 + (7 / 3) ** 2 * 45)),
    ],
)
def test_bursts_count_a_windows_requests_as_fewer_independent_draws(
        label: str, sigma: float | None, seen: float, expected: float) -> None:
    assert independent_requests(sigma, seen) == pytest.approx(expected), label


def test_the_extreme_of_more_draws_stands_further_out() -> None:
    assert expected_max(1) == 0.0  # one draw is its own mean
    assert expected_max(240) == pytest.approx(2.79, abs=0.01)  # an hour of 15 s readings
    steps = [expected_max(n) for n in (2, 5, 20, 60, 240)]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)


def readings(*ratios: float) -> tuple[tuple[float, float], ...]:
    return tuple((T0 - 15.0 * (len(ratios) - i), b) for i, b in enumerate(ratios))


@pytest.mark.parametrize(
    ("label", "bursts", "spread", "expected"),
    [
        ("no reading: unknown", (), 0.1, None),
        ("one reading shows no spread: unknown", readings(3.0), 0.1, None),
        # few requests per burst window: no quiet stretch can be told from chance, and
        # only peaks show: the wait for them stays
        ("a thin load: unknown", readings(*[1.0] * (BURST_MIN_SAMPLES - 1)), 0.5, None),
        ("a thin load after the wait", readings(*[1.0] * (BURST_MIN_SAMPLES - 1), 1.5), 0.5,
         0.5 / expected_max(BURST_MIN_SAMPLES)),
        ("smooth within the noise", readings(*[1.0] * 20), 0.1, 0.0),
        ("a peak", readings(*[1.0] * 19, 1.25), 0.1, 0.25 / expected_max(20)),
        # 0.2 left after the noise: even with it added back twice (0.4) surely below 1
        ("a quiet stretch", readings(1.0, 0.2), 0.1, 0.6 / expected_max(2)),
        # once the peaks have had the time to show, a quiet stretch binds no refusals:
        # a slow start (a trace's first seconds) no longer counts, the peaks do
        ("a quiet stretch among enough readings", readings(0.0, *[1.0] * 19), 0.1, 0.0),
        ("a peak after a quiet stretch", readings(0.0, *[1.0] * 18, 1.25), 0.1,
         0.25 / expected_max(20)),
        ("a quiet stretch just before the peaks could show",
         readings(0.0, *[1.0] * 18), 0.1, 0.8 / expected_max(19)),
    ],
)
def test_burstiness_is_estimated_from_the_second_reading(
        label: str, bursts: tuple[tuple[float, float], ...], spread: float,
        expected: float | None) -> None:
    result = burst_sigma(bursts, spread)
    if expected is None:
        assert result is None, label
    else:
        assert result == pytest.approx(expected), label


def test_the_burstiness_estimate_narrows_as_readings_come() -> None:
    # The same 1.5 peak among more readings is a milder load: the extreme of many draws
    # stands further out by chance alone.
    estimates = [burst_sigma(readings(*[1.0] * (n - 1), 1.5), 0.1) for n in (2, 5, 20, 240)]
    known = [e for e in estimates if e is not None]
    assert len(known) == len(estimates)
    assert known == sorted(known, reverse=True) and len(set(known)) == len(known)


@settings(max_examples=200, deadline=None)
@given(rho=st.floats(0.05, 0.95), slack_=st.floats(0.5, 20))
def test_the_fit_recovers_the_model_it_reads_through(rho: float, slack_: float) -> None:
    # Refusals exactly as the queueing model makes them at `rho` give back the model's
    # own utilisation for the target.
    refused = rho * math.exp(-(1 - rho) * slack_)
    if refused > 0.002:  # below the floor, the fit reads the floor
        assert fitted_utilisation(rho, refused) == pytest.approx(
            model_utilisation(slack_, REFUSAL_TARGET), abs=1e-6)
    assert fitted_utilisation(rho, refused / 2) >= fitted_utilisation(rho, refused) - 1e-9


def cold_start(bursts: tuple[tuple[float, float], ...], requests_rate: float,
               share: float, short: float = 1.0) -> float:
    """One tick of a calibration still at its start (the START_REFUSALS estimate), the
    Ready replicas running at that utilisation (or with `short` of the capacity sized
    for it Ready); the utilisation it leaves."""
    spec = build(three_pools())
    start = model_utilisation(3.0)
    memory = Memory(utilisation=start, bursts=bursts)
    observation = Observation(5000.0, 5000.0, requests_rate=requests_rate,
                              refused_share=share, burst_rate=5000.0)
    return size(spec, observation, memory, T0, ready_capacity=5000.0 / start * short,
                ready_slots=0, slack=3.0).utilisation


def test_a_smooth_dense_load_starts_where_its_evidence_says() -> None:
    # 6,000 smooth requests in the window, 0.5 % refused at the start's 22 %: the model
    # fitted to that reaches the target beyond its own 10 % estimate, which bounds it;
    # the step alone would have moved 5 %.
    start = model_utilisation(3.0)
    smooth = cold_start(readings(*[1.0] * 4), 20.0, 0.005)
    assert smooth == pytest.approx(model_utilisation(3.0, REFUSAL_TARGET))
    assert smooth > start * STEP_UP * 1.5


def test_surely_below_the_target_the_fit_reads_the_point_estimate() -> None:
    # 6,000 smooth requests refused exactly as the model says at the start (2 % at 22 %):
    # the model, read through that share, puts the target at its own estimate. The
    # interval's upper end (2.6 %) would have put it lower, and left the climb to steps.
    start = model_utilisation(3.0)
    target = model_utilisation(3.0, REFUSAL_TARGET)
    lifted = cold_start(readings(*[1.0] * 4), 20.0, START_REFUSALS)
    assert lifted == pytest.approx(target, rel=1e-6)
    upper = wilson(START_REFUSALS, 6000.0)[1]
    assert fitted_utilisation(start, upper) < target - 0.03


def test_a_slow_start_stops_thinning_the_evidence_once_the_peaks_could_show() -> None:
    # A smooth dense load whose first reading was a quiet stretch (0.0: a trace that
    # starts sparse): while the peaks have not had the time to show, that dip stands in
    # for burstiness and the start only steps; after five minutes of smooth readings the
    # evidence is the smooth load's, and the fit lifts the start as it would have.
    start = model_utilisation(3.0)
    early = cold_start(readings(0.0, 1.0, 1.0), 20.0, 0.005)
    assert early <= start * STEP_UP + 1e-9
    later = cold_start(readings(0.0, *[1.0] * BURST_MIN_SAMPLES), 20.0, 0.005)
    assert later == pytest.approx(model_utilisation(3.0, REFUSAL_TARGET))


@pytest.mark.parametrize(
    ("label", "bursts", "requests_rate", "share", "short"),
    [
        ("burstiness unknown: this tick's reading alone", (), 20.0, 0.0, 1.0),
        ("code-like bursts", readings(1.0, 8.0, 0.0, 1.0), 20.0, 0.0, 1.0),
        ("a thin load", readings(1.0, 1.0, 1.0), 0.02, 0.0, 1.0),
        ("refusals near the target", readings(*[1.0] * 4), 20.0, 0.09, 1.0),
        # half the capacity sized for is Ready (a wave, Pending replicas): the window's
        # refusals were seen at another utilisation than the replicas run at now
        ("capacity short of what was asked", readings(*[1.0] * 4), 20.0, 0.005, 0.5),
    ],
)
def test_without_the_evidence_the_start_only_steps(
        label: str, bursts: tuple[tuple[float, float], ...], requests_rate: float,
        share: float, short: float) -> None:
    assert cold_start(bursts, requests_rate, share, short) <= \
        model_utilisation(3.0) * STEP_UP + 1e-9, label


def test_while_the_load_runs_ahead_only_a_sure_step_up_counts() -> None:
    # One Ready GPU replica at 30 % serves 30 chars/s; 100 arrive: the window may hold a
    # lag, so a share surely above the target does not lower the utilisation...
    ahead = Observation(100.0, 100.0, requests_rate=1.0, refused_share=0.5)
    bursts = tuple((T0 - 15.0 * i, 1.0) for i in range(1, BURST_MIN_SAMPLES + 1))
    memory = Memory(utilisation=0.3, bursts=bursts)
    spec = build(three_pools())
    lagging = size(spec, ahead, memory, T0, ready_capacity=100.0, ready_slots=1, slack=3.0)
    assert lagging.utilisation == pytest.approx(0.3)
    assert lagging.calibrate_after == T0 + 300
    # ...and once the load is within it again, good news counts at once (a lag only adds
    # refusals), bad news only after the window has left the lag behind.
    calm = Memory(utilisation=0.3, bursts=bursts, calibrate_after=T0 + 300)
    within = Observation(25.0, 25.0, requests_rate=2.0, refused_share=0.0)
    good = size(spec, within, calm, T0 + 15, ready_capacity=100.0, ready_slots=1, slack=3.0)
    assert good.utilisation > 0.3
    bad = size(spec, replace_share(within, 0.5), calm, T0 + 15, ready_capacity=100.0,
               ready_slots=1, slack=3.0)
    assert bad.utilisation == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("label", "ready", "asked", "expected"),
    [
        # 2000 chars/s of capacity asked for a cold start at 60 %: 1200 chars/s sized for;
        # its noise over
        # the 300 s window (100 characters a request) is sqrt(1200 x 100 x 2 / 300) = 28
        # chars/s, so a shortfall is out of the noise above 2 x 28 / 0.6 = 94 of capacity
        ("nothing known to be asked for a cold start", 0.0, 0.0, False),
        ("every replica asked for is Ready", 2000.0, 2000.0, False),
        ("more Ready than asked (a scale-down)", 2400.0, 2000.0, False),
        ("short within the load's noise", 1920.0, 2000.0, False),
        ("short beyond it", 1880.0, 2000.0, True),
        ("half of it Pending or interrupted", 1000.0, 2000.0, True),
    ],
)
def test_capacity_is_short_only_beyond_the_noise_of_its_load(
        label: str, ready: float, asked: float, expected: bool) -> None:
    assert capacity_short(ready, asked, 0.6, 100.0, 1.0) is expected, label


def refused_at(share: float, ready: float, asked: float, utilisation: float = 0.6):
    """One tick of a settled calibration: 1000 chars/s of smooth load (10 requests/s, so
    3,000 in the long window), `ready` of capacity Ready out of `asked`."""
    spec = build(three_pools())
    memory = Memory(utilisation=utilisation, bursts=readings(*[1.0] * BURST_MIN_SAMPLES))
    observation = Observation(1000.0, 1000.0, requests_rate=10.0, refused_share=share,
                              burst_rate=1000.0)
    return size(spec, observation, memory, T0, ready_capacity=ready, ready_slots=0,
                slack=3.0, asked_capacity=asked, settled_capacity=asked)


@pytest.mark.parametrize(
    ("label", "share", "ready", "asked", "moves"),
    [
        # 2000 Ready at 60 % carry the 1000 chars/s (the load is within what they were
        # sized for, so the lag test does not fire): the refusals are about utilisation
        ("30 % refused at full capacity steps down", 0.3, 2000.0, 2000.0, "down"),
        # the same refusals with 2000 of 4000 asked Ready (a wave, spot Pending)
        ("30 % refused with half the capacity Pending holds", 0.3, 2000.0, 4000.0, "hold"),
        ("a drift down is held as well", 0.11, 2000.0, 4000.0, "hold"),
        # a shortfall only adds refusals: surely below the target is so all the more
        ("none refused while short still steps up", 0.0, 2000.0, 4000.0, "up"),
    ],
)
def test_refusals_while_capacity_is_short_do_not_lower_the_calibration(
        label: str, share: float, ready: float, asked: float, moves: str) -> None:
    result = refused_at(share, ready, asked)
    if moves == "down":
        assert result.utilisation < 0.6, label
        assert result.calibrate_after is None, label
    elif moves == "hold":
        assert result.utilisation == pytest.approx(0.6), label
        # the long window must leave the shortfall's refusals behind before they teach
        assert result.calibrate_after == T0 + 300, label
    else:
        assert 0.6 < result.utilisation <= 0.6 * STEP_UP + 1e-9, label


@settings(max_examples=200, deadline=None)
@given(share=st.floats(0.0, 1.0), utilisation=st.floats(0.2, 0.69),
       missing=st.floats(0.1, 0.9))
def test_a_shortfall_never_lowers_the_calibration_nor_fits_it(
        share: float, utilisation: float, missing: float) -> None:
    # Whatever share of refusals a shortfall beyond noise shows, the calibration never
    # steps down, and never jumps by a fit: at most the one sure step up. At full Ready
    # capacity the same share, surely above the target, steps it down.
    ready = 1000.0 / utilisation * 1.2  # the load stays within what Ready was sized for
    short = refused_at(share, ready, ready / (1.0 - missing), utilisation)
    assert utilisation - 1e-9 <= short.utilisation <= utilisation * STEP_UP + 1e-9
    if wilson(share, 3000.0)[0] > REFUSAL_TARGET:
        assert refused_at(share, ready, ready, utilisation).utilisation < utilisation


def plans(*counts: dict[str, int]) -> tuple[tuple[float, dict[str, int]], ...]:
    """One plan a tick, the last one a tick before T0."""
    return tuple((T0 - 15.0 * (len(counts) - i), c) for i, c in enumerate(counts))


@pytest.mark.parametrize(
    ("label", "pools", "asked", "lowered"),
    [
        ("every GPU replica asked for is Ready", {"gpu": PoolState(4, 4)},
         plans(*[{"gpu": 4}] * 10), True),
        # asked for over a whole cold start (120 s) and a tick: Pending in a shortage
        ("four of eight still Pending after a cold start",
         {"gpu": PoolState(8, 4, pending=4, pending_seconds=150.0)},
         plans(*[{"gpu": 8}] * 10), False),
        ("two interrupted", {"gpu-spot": PoolState(4, 2, interrupted=2),
                             "gpu": PoolState(2, 2)}, plans(*[{"gpu-spot": 4, "gpu": 2}] * 10),
         False),
        # a scale-up under way: the four new replicas were asked a minute ago, so their
        # cold start is not over; refusals still teach (the lag test covers a load that
        # outruns the Ready replicas, and this one does not)
        ("four of eight asked a minute ago", {"gpu": PoolState(8, 4, pending=4)},
         plans(*[{"gpu": 4}] * 6, *[{"gpu": 8}] * 4), True),
        ("no plan as old as a cold start: unknown", {"gpu": PoolState(8, 4, pending=4)},
         plans(*[{"gpu": 8}] * 4), True),
        # spot retried while on-demand covers (make before break): the targets add the
        # old mix to the new, but every plan was one mix, and the Ready one serves it
        ("spot Pending behind Ready on-demand cover",
         {"gpu": PoolState(4, 4), "gpu-spot": PoolState(4, 0, pending=4,
                                                        pending_seconds=150.0)},
         plans(*[{"gpu-spot": 4}] * 10), True),
    ],
)
def test_decide_reads_a_shortfall_from_replicas_asked_for_a_cold_start(
        label: str, pools: dict[str, PoolState],
        asked: tuple[tuple[float, dict[str, int]], ...], lowered: bool) -> None:
    # 150 chars/s, 30 % of 450 requests refused, four GPU replicas Ready at 60 %
    # (200 chars/s sized for): at full capacity the refusals step the calibration down;
    # with replicas asked for a whole cold start and not Ready they leave it where it was.
    spec = build(three_pools())
    memory = Memory(utilisation=0.6, bursts=readings(*[1.0] * BURST_MIN_SAMPLES),
                    plans=asked)
    observation = Observation(150.0, 150.0, pools, requests_rate=1.5, refused_share=0.3,
                              burst_rate=150.0)
    learned = decide(spec, observation, memory, T0).memory.utilisation
    assert learned is not None
    assert (learned < 0.6) is lowered, label
    if not lowered:
        assert learned == pytest.approx(0.6), label


def test_the_plans_decide_keeps_reach_back_a_cold_start_for_the_shortfall() -> None:
    # Twelve ticks with every replica asked for Ready and refusals at the target, then
    # 30 % refused: with a third of each pool lost the calibration holds, with all Ready
    # it steps down (a headroom of 2 keeps what is left above the load, so the lag test
    # does not fire). The plans the ticks left in memory must reach back the GPU's 120 s
    # cold start and a tick for the loss to be seen, whatever the ticks' jitter (here
    # each comes a second late).
    spec = build(three_pools(burstHeadroom=2.0))
    memory = Memory(utilisation=0.6, bursts=readings(*[1.0] * BURST_MIN_SAMPLES))
    now = T0
    for _ in range(12):
        targets = memory.targets or {"gpu": 4}
        pools = {n: PoolState(c, c) for n, c in targets.items()}
        observation = Observation(150.0, 150.0, pools, requests_rate=1.5,
                                  refused_share=REFUSAL_TARGET, burst_rate=150.0)
        memory = decide(spec, observation, memory, now).memory
        now += 16.0
    held = dict(memory.targets)
    before = memory.utilisation
    assert before is not None and any(c >= 3 for c in held.values()), held

    def last(ready: dict[str, int]) -> float | None:
        pools = {n: PoolState(c, ready.get(n, c)) for n, c in held.items()}
        observation = Observation(150.0, 150.0, pools, requests_rate=1.5,
                                  refused_share=0.3, burst_rate=150.0)
        return decide(spec, observation, memory, now).memory.utilisation

    assert last({n: c - c // 3 for n, c in held.items()}) == pytest.approx(before)
    lowered = last({})
    assert lowered is not None and lowered < before


def replace_share(observation: Observation, share: float) -> Observation:
    return dataclasses.replace(observation, refused_share=share)


def test_without_the_refusal_signal_the_target_utilisation_holds() -> None:
    result = sized(Observation(1000.0, 1000.0))
    assert result.utilisation == 0.7 and result.learned is None


def test_the_first_refusal_reading_starts_from_the_model() -> None:
    result = sized(Observation(1000.0, 1000.0, requests_rate=10.0,
                               refused_share=REFUSAL_TARGET))
    assert result.learned == pytest.approx(model_utilisation(3.0))


@pytest.mark.parametrize(
    ("label", "slo", "out"),
    [
        # CPU: 3.8 s per 100 characters. At 5 s it may wait 0.31 of its service time.
        ("a 5 s SLO keeps CPU out of a mix with GPU", 5.0, {"cpu"}),
        ("a 10 s SLO lets it in", 10.0, set()),
    ],
)
def test_pools_too_slow_to_share_a_dispatch(label: str, slo: float, out: set[str]) -> None:
    spec = build({"pools": {"gpu": dict(GPU), "cpu": dict(CPU)},
                  "scaling": {"latencySLOSeconds": slo}})
    assert set(kept_out(spec)) == out, label
    assert slack(spec, spec.pools["cpu"]) == pytest.approx(slo / 3.8023 - 1, rel=1e-3)


def test_a_pool_alone_is_never_kept_out() -> None:
    spec = build({"pools": {"cpu": dict(CPU)}, "scaling": {"latencySLOSeconds": 5.0}})
    assert kept_out(spec) == {}


def test_a_kept_out_pool_still_serves_alone_when_no_faster_pool_is_needed() -> None:
    spec = build({"pools": {"gpu": dict(GPU), "cpu": dict(CPU, minReplicas=1, maxReplicas=20)},
                  "scaling": {"latencySLOSeconds": 5.0}, "routing": {"enabled": False}})
    thin = decide(spec, Observation(30.0, 30.0), Memory(), T0)
    assert thin.replicas == {"gpu": 0, "cpu": 2}  # 43 chars/s: two CPU, no GPU to share with
    assert "cpu serving alone" in thin.reason
    assert thin.capacity >= 30 / 0.7
    capped = build({"pools": {"gpu": dict(GPU), "cpu": dict(CPU, minReplicas=1)},
                    "scaling": {"latencySLOSeconds": 5.0}, "routing": {"enabled": False}})
    busy = decide(capped, Observation(300.0, 300.0), Memory(), T0)
    # 428 chars/s is more than six CPU replicas serve: GPU it is, and CPU at its floor
    assert busy.replicas["gpu"] > 0 and busy.replicas["cpu"] == 1


def test_serving_alone_is_sized_for_its_own_utilisation_once_refusals_calibrate() -> None:
    spec = build({"pools": {"gpu": dict(GPU), "cpu": dict(CPU, maxReplicas=40)},
                  "scaling": {"latencySLOSeconds": 5.0}})
    observed = Observation(30.0, 30.0, requests_rate=0.2, refused_share=0.02)
    decision = decide(spec, observed, Memory(utilisation=0.23), T0)
    # 30 chars/s at 23 % is 130 chars/s: two GPU replicas ($1.05/h). CPU alone is sized
    # for its own ~10 % (slack 0.31 against GPU's 3.17): 300 chars/s, twelve replicas,
    # no cheaper; at the GPU's utilisation it would have been five ($0.44/h).
    assert decision.replicas == {"gpu": 2, "cpu": 0}


def test_behind_a_plain_service_the_kept_out_pool_is_named_in_the_reason() -> None:
    spec = build({"pools": {"gpu": dict(GPU), "cpu": dict(CPU, minReplicas=1)},
                  "scaling": {"latencySLOSeconds": 5.0}, "routing": {"enabled": False}})
    decision = decide(spec, Observation(200.0, 200.0), Memory(), T0)
    assert decision.replicas == {"gpu": 4, "cpu": 1}  # its floor only; GPU carries the load
    assert "cpu kept out of the mix: 3.8s per 100 chars leaves 0.31 service times" \
        in decision.reason


@settings(max_examples=200, deadline=None)
@given(shares=st.tuples(st.floats(0, 2), st.floats(0, 2)), requests=st.floats(0, 1e5),
       independence=st.floats(1e-4, 1))
def test_the_refusal_step_is_bounded_and_never_grows_with_the_share(
        shares: tuple[float, float], requests: float, independence: float) -> None:
    low, high = sorted(shares)
    evidence = max(1.0, requests * independence)
    less, more = refusal_step(low, requests, evidence), refusal_step(high, requests, evidence)
    assert STEP_DOWN - 1e-12 <= more <= less + 1e-12 <= STEP_UP + 2e-12


@settings(max_examples=100, deadline=None)
@given(held=st.lists(st.tuples(st.floats(0, 3000), st.floats(0, 3000)), max_size=8),
       load=st.floats(0, 500), burst=st.floats(0, 5000))
def test_demand_never_drops_below_the_recurring_level(
        held: list[tuple[float, float]], load: float, burst: float) -> None:
    spec = build(three_pools())
    episodes = tuple((T0 - 400 * (i + 1), max(a, b), min(a, b)) for i, (a, b) in enumerate(held))
    result = size(spec, Observation(load, load, burst_rate=burst), Memory(episodes=episodes),
                  T0, ready_capacity=1e9, ready_slots=0, slack=3.0)
    assert result.demand + 1e-9 >= result.floor / spec.scaling.target_utilization
    assert result.floor <= max((e[2] for e in result.episodes), default=0.0)
    if len(result.episodes) < RECURRING:
        assert result.floor == 0.0
