"""Demand stage: how much capacity the load asks for, from rates, bursts and backlog.

All of it is arithmetic on the observation and on the engine's memory; nothing reads a
clock. Rates are in the spec's metric unit; the admission signals are characters.

Two time scales, aware of noise. The long (~5 m) rate is the base. The short (~1 m) rate
only raises it when it exceeds the base by more than its own sampling noise: requests
arrive as a Poisson process, so over a window of W seconds the character rate's standard
deviation is sqrt(rate x mean_chars x (1 + cv^2) / W), where mean_chars comes from the
observed requests rate and cv^2, the squared coefficient of variation of text length, is
taken as 1 (exponential; the log-normal lengths of LLM and TTS traces measure 0.8-1.1).
`NOISE_Z` standard deviations is "more than noise".

Burst headroom: how far the ~15 s rates have stood above the long rate over the last
hour, after taking their own noise off (`BURST_NOISE_Z` deviations: the highest of an
hour of Poisson samples stands about 2.8 out), the highest of those ratios, between 1
and `MAX_HEADROOM`; `scaling.burstHeadroom` in the spec overrides it.

Warm floor for recurring bursts: a burst shorter than a cold start is over before the
replicas it asks for are Ready, and between bursts the long rate and the headroom
collapse, so each burst would land on what stayed warm. The engine keeps the burst
episodes of the last hour (`episodes_after`): ~15 s rates above `EPISODE_RATIO` times
the long rate (past its noise), readings within `EPISODE_GAP_SECONDS` one episode, each
holding its highest and second-highest reading. The level that `RECURRING` episodes held
(their second-highest readings: one reading may be noise, and a burst that short is over
before anything serves it; `recurring_level`) is a floor under the demand, at the
utilisation the refusal calibration aims for (`model_utilisation` at `REFUSAL_TARGET`,
never above `targetUtilization`, never below what it has learned): intermittent bursts
count as about one draw each, so they never give the calibration the evidence to get
there. A burst no higher than the floor is not chased, neither by the short rate nor by
panic: the floor is there for it, and what chasing orders is Ready after it ends. A
one-off peak (a flash crowd) sets no floor, and the floor lapses an hour after the
bursts stop reaching it.

Backlog: what the workers' backlog gauge (characters admitted and not yet synthesised)
holds beyond one typical request per Ready slot (the work in service) is a queue, and it
must drain within the SLO of a typical request: that drain rate is added to the rate.

Utilisation that follows the workers' refusals: replicas behind a Service that picks an
endpoint at random queue as independent servers, and a long text in service blocks the
short ones behind it, so the utilisation at which waits stay within the SLO depends on
the SLO, the text lengths and the dispatch, not on a constant. Once the workers report
refusals (without that signal it sizes at `targetUtilization`), the engine starts at
the utilisation a queueing estimate gives for `START_REFUSALS` refused
(`model_utilisation`), never above `targetUtilization`: where even clients that wait a
whole second per refusal keep the SLO, since the engine cannot tell which clients it
has. From there it steers it so that the share of offered requests the workers refuse
(over the long window) settles at `REFUSAL_TARGET`, with a step that follows the
evidence (`refusal_step`): where the share's confidence interval lies wholly on one side
of the target, a fast step (up to 5 % a tick) towards it; where the interval holds the
target, a slow drift (1 % a tick) on the point estimate. The interval counts a window's
requests as independent draws only as far as the observed burstiness allows
(`independent_requests`): a burst's refusals come together, so on bursty load (the
Azure code trace's bursts stand 8x above its rate) the interval stays wide and only the
drift moves, while smooth load of thousands of requests with few refusals climbs within
minutes. The burstiness is estimated from the second 15 s reading on (`burst_sigma`:
the readings' extremes over how far the extreme of that many draws stands out by
chance), so the evidence counts from the first ticks, not after a five-minute wait; only
on a load too thin for a quiet stretch to show (fewer than ~70 requests per reading) does
it wait for `BURST_MIN_SAMPLES` readings. Peaks count for the hour; quiet stretches only
stand in for them over the first `BURST_MIN_SAMPLES` readings, before a bursty load's
peaks could have shown: a quiet stretch refuses nothing, and a slow first half-minute
(the Azure conversation trace starts at a tenth of its rate) would otherwise hold a
smooth load's evidence thin, and its start at the conservative estimate, for an hour
(on conv x4 the start took 19 minutes to reach 70 % without that limit).
Where the interval lies wholly below the target, the evidence also sets where the
calibration stands (`fitted_utilisation`): the queueing model, its slack fitted to the
share of refusals (the point estimate: the interval has already said the target is
surely not reached) the Ready replicas show at the utilisation they run at, says where
the target lies, and the utilisation is lifted to it at once, at most to the model's
own estimate for the target (on conv x4: there within a minute, settled near 64 %
within four). Steps against a five-minute window would take ten minutes to climb there
from the start. Against the simulator's worker and clients (steady Poisson load on the
default GPU pool), the model is close for the Azure conversation trace's lengths (10 %
refused at 0.50; measured 0.49 on 100 replicas, 0.44 on 10) and pessimistic for
shorter or less varied texts (the built-in day's: measured 0.59; the code trace's, 27
characters on average: about 4 % refused at 0.70), since a text under 100 characters
may wait the whole SLO; `tests/simulator/test_refusal_model.py` pins that. A tick
whose load runs ahead of what the Ready replicas were sized for (the
~15 s rate above it by more than its noise) starts a long window within which the
refusals may measure the lag of scaling up rather than the utilisation: meanwhile only
the fast step up counts (lag adds refusals, so a window that shows the target surely not
reached shows it all the more without the lag). So does a tick whose Ready capacity
falls short of the capacity every plan of the last cold start was sized to serve
(`capacity_short`: replicas interrupted, Pending in a spot shortage), by more than the
noise of the load it was sized for: the Ready replicas run above the utilisation they were
sized for, so their refusals measure the missing replicas, and neither step the
calibration down nor fit it. Replicas still starting after a scale-up do not count as
short: the lag test above covers a load that outruns them, and freezing the down-steps
on every scale-up (the up-steps kept) biases the calibration upwards (on the steady
and compressed-day scenarios it cost 0.2 and 0.2-0.5 points of the SLO). The
utilisation stays within
`MIN_UTILISATION` and `targetUtilization`. A
refused request comes back after the worker's retry-after-ms hint (ADMISSION.md: 100 ms
on a first attempt, doubling), most likely to another replica, and is usually admitted
there well within its SLO: on steady Poisson load (300 to 5,000 chars/s, the default
pools, the simulator's worker and client) one refusal in 45 to 90 ends outside the SLO,
so 10 % refused keeps the misses at 0.1-0.2 %, under half of what a 99.5 % SLO allows,
the rest being left for scaling lag and spot. Clients that read only Retry-After wait a
whole second per refusal and miss far more often: for them 10 % refused costs several
per cent of the SLO (the benchmark's sensitivity run measures it).

Panic (as Knative's autoscaler): when the ~15 s rate asks for more than `PANIC_FACTOR`
times the Ready capacity, scale up to it at once and scale nothing down until a
scale-down window (`decide` passes the shortest pool's) has passed without such a
reading. With nothing Ready yet there is nothing to protect, and the ordinary path
scales up. In a panic, or when a burst finds nothing Ready that counts, `decide` orders
a pool kept out of the mix that starts faster for the shortfall (`policy.bridge`),
from `wanted`, the demand before the scale-up rate's limit below.

Scale-up rate: what the short rate or a panic asks for above the long rate's sizing
grows the capacity asked for by at most `SCALE_UP_FACTOR` per tick (an HPA's default
is 100 % per 15 s too). Replicas take a cold start to be Ready, so a burst of seconds is
over before they serve; one that lasts is covered within a few ticks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

from elastic_tts.policy.model import Memory, Observation
from elastic_tts.policy.spec import TTSServiceSpec

NOISE_Z = 2.0
LENGTH_CV2 = 1.0
SHORT_WINDOW_SECONDS = 60.0
BURST_WINDOW_SECONDS = 15.0
BURST_HISTORY_SECONDS = 3600.0
BURST_MIN_SAMPLES = 20  # five minutes of 15 s ticks before the headroom is trusted
BURST_QUANTILE = 1.0  # the highest: a burst a few per cent of the time still counts
BURST_NOISE_Z = 3.0  # the highest of 240 noisy samples stands ~2.8 sigma out: take 3 off
# (and a reading's noise band, within which it tells nothing about burstiness)
MAX_HEADROOM = 2.0
EPISODE_RATIO = 2.0  # a ~15 s rate this far above the long rate (past its noise) is a burst
EPISODE_GAP_SECONDS = 60.0  # burst readings closer than this belong to one episode
RECURRING = 2  # a level the bursts of the last hour reached this often is kept warm
REFUSAL_TARGET = 0.10
START_REFUSALS = 0.02  # where the calibration starts: safe for whole-second retries too
REFUSAL_GAIN = 0.05  # one tick moves this share of the log-distance to the target
REFUSAL_Z = 3.0  # the refused share's confidence interval, in standard deviations
REFUSAL_FULL_GAIN_REQUESTS = 2000.0  # requests per long window for the drift's full gain
REFUSAL_FLOOR = 0.002  # a share (or bound) below this counts as this: the step stays bounded
STEP_DOWN, STEP_UP = 0.97, 1.05  # one tick's bounds where the evidence excludes the target
DRIFT_DOWN, DRIFT_UP = 0.99, 1.01  # and where it does not: a slow drift
LONG_WINDOW_SECONDS = 300.0
MIN_UTILISATION = 0.1
PANIC_FACTOR = 2.0
PANIC_HOLD_SECONDS = 60.0  # when the caller names no window (Knative's stable window)
SCALE_UP_FACTOR = 2.0


@dataclass(frozen=True)
class Sizing:
    rate: float  # the load sized for, metric unit (before utilisation)
    demand: float  # capacity wanted: (rate x headroom + backlog) / utilisation
    headroom: float
    utilisation: float  # sized for now
    learned: float | None  # what the refusals taught, None before any were observed
    backlog_rate: float  # metric units/s added for backlog and refusals
    used_short: bool  # the short rate stood out of its noise
    panic: bool
    panic_until: float | None
    bursts: tuple[tuple[float, float], ...]
    calibrate_after: float | None
    episodes: tuple[tuple[float, float, float], ...] = ()
    floor: float = 0.0  # the recurring bursts' level kept warm, metric unit (0: none)
    wanted: float = 0.0  # the demand before the scale-up rate's limit
    panicking: bool = False  # this tick's reading panics (not only the hold after one)
    rising: bool = False  # the short rate stands above the long one by more than its noise


def chars_per_unit(spec: TTSServiceSpec) -> float:
    return 1.0 if spec.scaling.metric == "characters" else spec.scaling.characters_per_request


def mean_chars(spec: TTSServiceSpec, observation: Observation) -> float:
    """Characters per request: observed when both rates are known, else the spec's."""
    long_rate, requests = observation.long_rate, observation.requests_rate
    if spec.scaling.metric == "characters" and long_rate and requests and requests > 0:
        return max(1.0, long_rate / requests)
    return spec.scaling.characters_per_request


def noise(rate: float, per_request: float, window: float, unit: float) -> float:
    """Standard deviation of a rate measured over `window` seconds (metric units)."""
    chars = max(rate, 0.0) * unit
    return math.sqrt(chars * per_request * (1 + LENGTH_CV2) / window) / unit


@lru_cache(maxsize=256)  # a service's slack is the same every tick: one bisection, not one a tick
def model_utilisation(slack: float, refusals: float = START_REFUSALS) -> float:
    """The utilisation at which a replica refuses about `refusals` of its requests.

    A replica behind a random dispatch is an M/G/1 queue: a request finds it busy with
    probability rho, and the wait of one that does is roughly exponential with mean
    E[S^2] / (2 E[S] (1 - rho)), which is E[S] / (1 - rho) for text lengths with cv = 1.
    A request is refused when its wait exceeds its slack, `slack` service times, so
    refusals ~ rho * exp(-(1 - rho) * slack); solved for rho by bisection. (For 1.2 s per
    100 characters against a 5 s SLO this gives 0.23 at 2 % and 0.50 at 10 %; the
    simulator measured 2.2 % refused at 0.22.)"""
    if slack <= 0:
        return MIN_UTILISATION
    low, high = 0.0, 1.0
    for _ in range(40):
        middle = (low + high) / 2
        if middle * math.exp(-(1 - middle) * slack) > refusals:
            high = middle
        else:
            low = middle
    return max(MIN_UTILISATION, low)


def expected_max(samples: int) -> float:
    """How many standard deviations the highest of `samples` normal draws stands above
    their mean, on average (Blom's approximation of the largest order statistic): 0 for
    one draw, 1.18 for five, 1.87 for twenty, 2.79 for an hour of 15 s readings."""
    return NormalDist().inv_cdf((samples - 0.375) / (samples + 0.25))


def burst_sigma(bursts: tuple[tuple[float, float], ...], spread: float) -> float | None:
    """The rate's relative fluctuation over a burst window, from every reading so far, or
    None while it is unknown.

    The readings' extremes are divided by how far the extreme of that many draws stands
    out (`expected_max`), so the estimate needs no wait: it is there from the second
    reading and firms up as readings come. Both sides count: a reading surely below the
    long rate (even with `spread`, the noise taken off each reading, added back twice)
    is a quiet stretch of a bursty load, as much evidence of burstiness as a peak, but
    only as a stand-in while the peaks have not had the time to show: for the first
    `BURST_MIN_SAMPLES` readings. From then on the peaks speak for themselves, and a
    quiet stretch is no longer evidence: it refuses nothing, so it binds no refusals
    together, and a dip or a slow start (a trace's first seconds, a load that steps up)
    would otherwise count as burstiness for an hour and keep a smooth load's evidence
    thin. Where that noise band reaches zero (2 x `spread` >= 1: fewer than ~70 requests
    per burst window), no quiet stretch can be told from chance and only peaks show: a
    bursty load may have shown none yet, so the estimate waits for `BURST_MIN_SAMPLES`
    readings, as the headroom does."""
    few = BURST_MIN_SAMPLES if 2.0 * spread >= 1.0 else 2
    if len(bursts) < few:
        return None
    above = max(b for _, b in bursts) - 1.0
    below = 0.0
    if len(bursts) < BURST_MIN_SAMPLES:
        below = 1.0 - (min(b for _, b in bursts) + 2.0 * spread)
    return max(above, below, 0.0) / expected_max(len(bursts))


def capacity_short(ready_capacity: float, settled_capacity: float, utilisation: float,
                   per_request: float, unit: float) -> bool:
    """Whether the Ready capacity falls short of what every plan of the last cold start
    was sized to serve (`settled_capacity`: its replicas have had the time to be Ready,
    so what of it is not was lost to an interruption or is Pending in a shortage, not on
    its way) by more than noise: the load that the missing capacity would carry at
    `utilisation` exceeds `NOISE_Z` standard deviations of the load it was sized for,
    measured over the refusal window (`LONG_WINDOW_SECONDS`). A smaller shortfall shifts the Ready
    replicas' utilisation over the window less than the load's own sampling noise does.
    Nothing settled (0): unknown, never short."""
    if settled_capacity <= 0:
        return False
    sized = settled_capacity * utilisation
    missing = (settled_capacity - ready_capacity) * utilisation
    return missing > NOISE_Z * noise(sized, per_request, LONG_WINDOW_SECONDS, unit)


def fitted_utilisation(utilisation: float, refused: float) -> float:
    """The utilisation at `REFUSAL_TARGET` refused by the queueing model of
    `model_utilisation`, its slack fitted to `refused` seen at `utilisation`: the
    evidence of one window, read through the model, rather than a step towards it."""
    rho = min(max(utilisation, 1e-6), 1.0 - 1e-6)
    fitted = math.log(rho / max(refused, REFUSAL_FLOOR)) / (1.0 - rho)
    return model_utilisation(fitted, REFUSAL_TARGET)


def independent_requests(sigma: float | None, seen: float) -> float:
    """How many independent draws the `seen` requests of a long window are worth, for the
    refused share's confidence interval.

    Refusals of one burst come together, so a window's requests are not independent
    draws when the load comes in bursts: they count as `seen` / D, D the index of
    dispersion of the counts over a burst window, 1 + sigma^2 x requests per burst
    window for a rate with relative fluctuation `sigma` (`burst_sigma`). While the
    burstiness is unknown, so is the independence: one draw."""
    if sigma is None:
        return 1.0
    per_burst = seen * BURST_WINDOW_SECONDS / LONG_WINDOW_SECONDS
    return seen / (1.0 + sigma * sigma * per_burst)


def wilson(share: float, requests: float, z: float = REFUSAL_Z) -> tuple[float, float]:
    """The Wilson score interval of a share observed over `requests` draws."""
    p = min(max(share, 0.0), 1.0)
    n = max(requests, 1e-9)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def refusal_step(share: float, requests: float, evidence: float) -> float:
    """The factor one tick applies to the learned utilisation, so that the step follows
    the evidence. The point estimate always drifts towards `REFUSAL_TARGET`, its gain
    scaled by the `requests` seen, within (`DRIFT_DOWN`, `DRIFT_UP`). Where the refused
    share's confidence interval (over `evidence` independent requests) lies wholly below
    or above the target, the step is at least as large as `REFUSAL_GAIN` of the
    log-distance from the interval's nearer end to the target, within (`STEP_DOWN`,
    `STEP_UP`): many requests and no refusal climb fast; a share surely above the target
    backs off fast; a few requests, or a few bursts, only drift. The step never grows
    with the share."""
    gain = REFUSAL_GAIN * min(1.0, requests / REFUSAL_FULL_GAIN_REQUESTS)
    drift = math.pow(REFUSAL_TARGET / min(max(share, REFUSAL_FLOOR), 1.0), gain)
    drift = min(DRIFT_UP, max(DRIFT_DOWN, drift))
    low, high = wilson(share, evidence)
    if high < REFUSAL_TARGET:
        sure = math.pow(REFUSAL_TARGET / max(high, REFUSAL_FLOOR), REFUSAL_GAIN)
        return max(drift, min(STEP_UP, sure))
    if low > REFUSAL_TARGET:
        return min(drift, max(STEP_DOWN, math.pow(REFUSAL_TARGET / low, REFUSAL_GAIN)))
    return drift


def episodes_after(episodes: tuple[tuple[float, float, float], ...], now: float,
                   burst: float, threshold: float) -> tuple[tuple[float, float, float], ...]:
    """The burst episodes of the last hour, as (newest reading's time, highest reading,
    second highest), with this tick's ~15 s rate `burst` counted when it exceeds
    `threshold`: it extends the newest episode when that one's newest reading is within
    `EPISODE_GAP_SECONDS`, else starts one."""
    kept = tuple(e for e in episodes if now - BURST_HISTORY_SECONDS <= e[0] < now)
    if burst <= threshold:
        return kept
    if kept and now - kept[-1][0] <= EPISODE_GAP_SECONDS:
        _, top, second = kept[-1]
        return (*kept[:-1], (now, max(top, burst), max(second, min(top, burst))))
    return (*kept, (now, burst, 0.0))


def recurring_level(episodes: tuple[tuple[float, float, float], ...]) -> float:
    """The highest rate that `RECURRING` separate bursts of the history held (0 with
    fewer bursts): a level the load has come back to, not a one-off peak. A burst
    holds its second highest reading: a single ~15 s reading may be noise, and a burst
    that short is over before anything could serve it."""
    if len(episodes) < RECURRING:
        return 0.0
    return sorted((second for _, _, second in episodes), reverse=True)[RECURRING - 1]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def size(spec: TTSServiceSpec, observation: Observation, memory: Memory, now: float,
         ready_capacity: float, ready_slots: int, slack: float,
         asked_capacity: float = 0.0, panic_hold: float = PANIC_HOLD_SECONDS,
         settled_capacity: float = 0.0) -> Sizing:
    """Capacity wanted for this tick (see the module doc); `ready_capacity` is what the
    Ready replicas serve now and `asked_capacity` what every replica asked for would, in
    the same unit as the demand; `settled_capacity` what every plan of the last cold
    start was sized to serve, the least of them (0: unknown); `ready_slots` is their concurrency
    slots, and `slack` that of the slowest pool that counts."""
    scaling = spec.scaling
    unit = chars_per_unit(spec)
    per_request = mean_chars(spec, observation)
    rates = [r for r in (observation.short_rate, observation.long_rate) if r is not None]
    long_rate = observation.long_rate if observation.long_rate is not None else max(rates)
    short_rate = observation.short_rate if observation.short_rate is not None else long_rate
    long_rate, short_rate = max(long_rate, 0.0), max(short_rate, 0.0)

    bursts = tuple(b for b in memory.bursts if now - BURST_HISTORY_SECONDS <= b[0] < now)
    burst = observation.burst_rate
    spread = 0.0  # the noise taken off a burst reading, relative to the long rate
    if long_rate > 0:
        spread = BURST_NOISE_Z * noise(long_rate, per_request, BURST_WINDOW_SECONDS,
                                       unit) / long_rate
    if burst is not None and long_rate > 0:
        bursts = (*bursts, (now, max(burst / long_rate - spread, 0.0)))
    sigma = burst_sigma(bursts, spread)
    episodes = memory.episodes
    if burst is not None:
        threshold = EPISODE_RATIO * long_rate + BURST_NOISE_Z * noise(
            long_rate, per_request, BURST_WINDOW_SECONDS, unit)
        episodes = episodes_after(episodes, now, burst, threshold)
    floor = recurring_level(episodes)
    if scaling.burst_headroom is not None:
        headroom = scaling.burst_headroom
    elif len(bursts) >= BURST_MIN_SAMPLES:
        headroom = min(MAX_HEADROOM, max(1.0, _quantile([b for _, b in bursts], BURST_QUANTILE)))
    else:
        headroom = 1.0

    base = long_rate * headroom
    band = NOISE_Z * noise(long_rate, per_request, SHORT_WINDOW_SECONDS, unit)
    fast = burst if burst is not None else short_rate
    # A burst no higher than the recurring level is what the warm floor is there for:
    # chasing it would order replicas that are Ready after it is over.
    covered = floor > 0 and fast <= floor
    used_short = short_rate > base + band and not covered
    rate = short_rate if used_short else base

    backlog_rate = 0.0
    if observation.backlog_characters is not None:
        drain = scaling.latency_slo_seconds * max(1.0, per_request / 100.0)
        queued = observation.backlog_characters - ready_slots * per_request * unit
        backlog_rate += max(queued, 0.0) / drain / unit

    share = observation.refused_share
    learned = memory.utilisation
    # Calibrate fully only in steady state: while the load runs ahead of what the Ready
    # replicas were sized for (by more than its noise), the refusals measure the lag of
    # scaling up, not the utilisation (and retries of a burst's refusals can exceed the
    # offered requests); the long window must have left such a tick behind too.
    if share is not None and learned is None:
        learned = min(scaling.target_utilization, model_utilisation(slack))
    sized_for = ready_capacity * (learned or scaling.target_utilization)
    steady = fast <= sized_for + NOISE_Z * noise(sized_for, per_request, BURST_WINDOW_SECONDS,
                                                 unit)
    # Refusals while the Ready capacity falls short of what the plans of a whole cold
    # start were sized for (an interruption or a wave, spot Pending in a shortage)
    # measure the missing replicas, not the utilisation: the Ready ones run above what
    # they were sized for. As for a lag, the long window must leave such a tick behind
    # before they teach again.
    short = capacity_short(ready_capacity, settled_capacity,
                           learned or scaling.target_utilization, per_request, unit)
    calibrate_after = memory.calibrate_after
    if not steady or short:  # the refusal window must not hold this tick's lag either
        calibrate_after = now + LONG_WINDOW_SECONDS
    calm = calibrate_after is None or now >= calibrate_after
    if share is not None and learned is not None and short_rate > 0:
        seen = long_rate * LONG_WINDOW_SECONDS * unit / per_request
        evidence = independent_requests(sigma, seen)
        step = refusal_step(share, seen, evidence)
        high = wilson(share, evidence)[1]
        # A window that may still hold a lag has more refusals than the utilisation
        # makes: it can only show that the target is surely not reached yet.
        if calm or high < REFUSAL_TARGET:
            learned = max(MIN_UTILISATION, learned * step)
        if high < REFUSAL_TARGET and 0 < long_rate <= sized_for and not short:
            # The calibration's start, read from the evidence: the Ready replicas have
            # run at long_rate / ready_capacity with `share` refused, and the model
            # fitted to that says where the target lies. Steps against a five-minute
            # window take ten minutes to climb from the START_REFUSALS estimate; the
            # fit gets there as soon as the evidence does. The interval has done its
            # part (the target is surely not reached); where the target lies is read
            # from the point estimate, since the interval's upper end reads a window of
            # thousands of requests as if it held the worst case (on conv x4, 2.9 %
            # refused at 29 % with an upper end of 5 % put 10 % at 42 %, the point at
            # 50 %). It only ever lifts, and
            # only up to the model's own estimate for the target (which bounds what a
            # window of older, lower utilisation could claim); the steps do the rest.
            # Replicas running above what they were sized for (capacity short of what
            # was asked: Pending, interrupted, a scale-up under way) have not run at
            # that utilisation for the window: then only the steps count.
            fitted = fitted_utilisation(long_rate / ready_capacity, share)
            learned = max(learned, min(fitted, model_utilisation(slack, REFUSAL_TARGET)))
        learned = min(learned, scaling.target_utilization)
    utilisation = learned if learned is not None else scaling.target_utilization
    # The floor runs at the utilisation the calibration aims for: intermittent bursts
    # never give it the evidence to get there (each burst counts as about one draw).
    warm = max(utilisation, min(scaling.target_utilization,
                                model_utilisation(slack, REFUSAL_TARGET))) if floor else 1.0
    base = max(long_rate * headroom / utilisation, floor / warm) + backlog_rate / utilisation
    demand = max(rate / utilisation, floor / warm) + backlog_rate / utilisation
    panic_until = memory.panic_until
    panicking = (ready_capacity > 0 and not covered
                 and PANIC_FACTOR * ready_capacity < fast / utilisation)
    if panicking:
        panic_until = now + panic_hold
    panic = panic_until is not None and now < panic_until
    if panic:
        demand = max(demand, (fast + backlog_rate) / utilisation)
    # Above what the long rate asks for, grow at most by SCALE_UP_FACTOR per tick: a
    # burst shorter than a cold start is over before what it asked for is Ready, while a
    # flash crowd that lasts doubles the capacity every tick until it is covered.
    wanted = demand
    if asked_capacity > 0:
        demand = min(demand, max(base, SCALE_UP_FACTOR * asked_capacity))
    return Sizing(rate, demand, headroom, utilisation, learned, backlog_rate, used_short,
                  panic, panic_until if panic else None, bursts,
                  calibrate_after if not calm else None, episodes, floor, wanted, panicking,
                  short_rate > long_rate + band)
