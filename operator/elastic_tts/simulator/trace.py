"""Traces: request arrival times and text lengths, and the transformations on them.

A `Trace` holds arrival offsets in seconds from its start (sorted) and the characters of
each request. Nothing here reads a file (see `tracefile`); the built-in day is generated
in code, deterministically.

The built-in day (see the README, "Simulate before you install") is shaped from the
published figures in the Azure Public Dataset (CC-BY 4.0; Patel et al., "Splitwise",
ISCA 2024; AzureLLMInferenceDataset2023):
- two peaks a day, as in Azure LLM "conversation" (10:30 and 20:30 local time);
- 8x between the peak and the trough (03:30-04:30), the low end of the 8-15x that
  Azure LLM "code" shows: one TTS service serves users in one time zone, so its
  night is deep, unlike the 2-2.5x of a global service;
- 5.5 requests/s at the peak, the mean rate of the Azure 2023 conversation trace;
- text lengths log-normal with median 129 and 95th percentile 451 characters (the
  conversation trace's GeneratedTokens), capped at the worker's 500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

MAX_TEXT_CHARACTERS = 500  # the worker's maximum text length
# What the simulator replays at most (README, "Simulate before you install"): it steps
# every second of the span for every policy, and keeps 16 bytes per request and a few
# per second, so these two bound its time and memory whatever the input.
MAX_SPAN_SECONDS = 31 * 86400.0  # a month: the monthly cost is the figure people want
MAX_REQUESTS = 20_000_000  # 230 requests/s for a day, 7.5/s for a month
BUILTIN_START = "2026-11-23T00:00:00"  # a Monday; midnight in the spec's time zone
BUILTIN_PEAK_RPS = 5.5
BUILTIN_PEAK_TO_TROUGH = 8.0
BUILTIN_PEAKS = ((10.5, 1.0), (20.5, 0.9))  # (hour of day, relative height)
BUILTIN_PEAK_WIDTH_HOURS = 2.5
BUILTIN_LENGTH_MEDIAN = 129.0
BUILTIN_LENGTH_P95 = 451.0
BUILTIN_SEED = 20231116  # fixed: the built-in day never changes with --seed
TRANSFORM_SEED = 7  # fixed: --scale places copies the same way on every run
ATTRIBUTION = (
    "Azure Public Dataset, AzureLLMInferenceDataset2023 (CC-BY 4.0): Patel et al., "
    '"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024'
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class TraceError(ValueError):
    """A trace that cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True)
class Trace:
    name: str
    times: FloatArray  # seconds from `start_epoch`, sorted
    chars: IntArray  # characters per request
    start_epoch: float  # POSIX time of offset 0, for schedules and cron floors
    notes: tuple[str, ...] = field(default_factory=tuple)  # transformations applied

    @property
    def requests(self) -> int:
        return int(self.times.size)

    @property
    def duration(self) -> float:
        """Seconds covered: up to the second after the last arrival."""
        return float(math.floor(self.times[-1]) + 1) if self.times.size else 0.0


def span_text(seconds: float) -> str:
    days = seconds / 86400
    if days >= 10:
        return f"{days:,.0f} days"
    return f"{days:.3g} days" if days >= 1 else f"{seconds:.0f} s"


def make_trace(name: str, times: FloatArray, chars: IntArray, start_epoch: float,
               notes: tuple[str, ...] = ()) -> Trace:
    """Sort by time (unless already sorted), shift so the first arrival is at offset >= 0,
    cap text lengths; refuse what the simulator cannot replay."""
    if times.size == 0:
        raise TraceError(f"{name}: the trace has no requests")
    if times.size > MAX_REQUESTS:
        raise TraceError(f"{name}: {times.size:,} requests, more than the {MAX_REQUESTS:,} "
                         "the simulator replays")
    times = np.asarray(times, dtype=np.float64)
    chars = np.asarray(chars, dtype=np.int64)
    if times.size > 1 and not bool(np.all(times[1:] >= times[:-1])):
        order = np.argsort(times, kind="stable")
        times, chars = times[order], chars[order]
    span = float(times[-1] - times[0])
    if not span <= MAX_SPAN_SECONDS:
        raise TraceError(f"{name}: spans {span_text(span)}, more than the "
                         f"{span_text(MAX_SPAN_SECONDS)} the simulator replays")
    capped = int(np.count_nonzero(chars > MAX_TEXT_CHARACTERS))
    if capped:
        chars = np.minimum(chars, MAX_TEXT_CHARACTERS)
        notes = (*notes, f"{capped} texts capped at {MAX_TEXT_CHARACTERS} characters")
    return Trace(name, times, chars, start_epoch, notes)


def scale(trace: Trace, factor: float) -> Trace:
    """Multiply the arrival rate by `factor` while keeping the shape within each gap.

    The integer part adds copies of every request; a fractional part keeps each extra
    copy with that probability (and a factor below 1 keeps each request with that
    probability). Every copy lands at a seeded random point between its original and
    the next request, so the per-minute rate is exactly scaled and no two copies arrive
    at the same instant, which would be burstier than the real trace.
    """
    if factor == 1.0:
        return trace
    if trace.requests * factor > MAX_REQUESTS:
        raise TraceError(f"{trace.name}: --scale {factor:g} makes about "
                         f"{trace.requests * factor:,.0f} requests, more than the "
                         f"{MAX_REQUESTS:,} the simulator replays")
    rng = np.random.default_rng(TRANSFORM_SEED)
    times, chars = trace.times, trace.chars
    if factor < 1.0:
        keep = rng.random(times.size) < factor
        if not keep.any():
            raise TraceError(f"{trace.name}: --scale {factor:g} leaves no requests")
        new_times, new_chars = times[keep], chars[keep]
    else:
        last_gap = float(np.mean(np.diff(times))) if times.size > 1 else 1.0
        gaps = np.diff(times, append=times[-1] + last_gap)
        whole = math.floor(factor)
        parts_t, parts_c = [times], [chars]
        keeps = [np.ones(times.size, dtype=bool)] * (whole - 1)
        if factor > whole:
            keeps.append(rng.random(times.size) < factor - whole)
        for keep in keeps:
            parts_t.append(times[keep] + rng.random(int(keep.sum())) * gaps[keep])
            parts_c.append(chars[keep])
        new_times, new_chars = np.concatenate(parts_t), np.concatenate(parts_c)
    notes = (*trace.notes, f"rate x{factor:g}")
    return make_trace(trace.name, new_times, new_chars, trace.start_epoch, notes)


def speedup(trace: Trace, factor: float) -> Trace:
    """Replay `factor` times faster: every offset divided by the factor."""
    if factor == 1.0:
        return trace
    span = float(trace.times[-1] - trace.times[0]) / factor if trace.times.size else 0.0
    if not span <= MAX_SPAN_SECONDS:
        raise TraceError(f"{trace.name}: --speedup {factor:g} stretches the trace to "
                         f"{span_text(span)}, more than the {span_text(MAX_SPAN_SECONDS)} "
                         "the simulator replays")
    return replace(trace, times=trace.times / factor,
                   notes=(*trace.notes, f"time compressed x{factor:g}"))


def builtin_rate(hours: FloatArray) -> FloatArray:
    """Requests per second of the built-in day at each hour of day (0-24)."""
    shape = builtin_rate_shape(hours)
    grid = np.linspace(0.0, 24.0, 24 * 60, endpoint=False)
    whole_day = builtin_rate_shape(grid)
    low, high = float(whole_day.min()), float(whole_day.max())
    trough = BUILTIN_PEAK_RPS / BUILTIN_PEAK_TO_TROUGH
    result: FloatArray = trough + (BUILTIN_PEAK_RPS - trough) * (shape - low) / (high - low)
    return result


def builtin_rate_shape(hours: FloatArray) -> FloatArray:
    shape = np.zeros_like(hours)
    for centre, height in BUILTIN_PEAKS:
        distance = np.abs(((hours - centre) + 12.0) % 24.0 - 12.0)  # wraps at midnight
        shape += height * np.exp(-0.5 * (distance / BUILTIN_PEAK_WIDTH_HOURS) ** 2)
    return shape


def text_lengths(rng: np.random.Generator, count: int) -> IntArray:
    """Characters per request as the built-in day draws them: log-normal with the
    conversation trace's median and 95th percentile, capped at the worker's maximum."""
    sigma = math.log(BUILTIN_LENGTH_P95 / BUILTIN_LENGTH_MEDIAN) / 1.6448536
    lengths = rng.lognormal(math.log(BUILTIN_LENGTH_MEDIAN), sigma, count)
    return np.clip(np.rint(lengths), 1, MAX_TEXT_CHARACTERS).astype(np.int64)


def from_rates(name: str, per_second: FloatArray, rng: np.random.Generator,
               start_epoch: float, notes: tuple[str, ...] = ()) -> Trace:
    """Poisson arrivals at `per_second[i]` requests/s during second i, uniform within
    each second, with `text_lengths`. Arrivals are in order of their second, which is
    all the simulator's per-second buckets need, and not sorted within it (the built-in
    day has always been drawn so)."""
    counts = rng.poisson(np.maximum(per_second, 0.0))
    starts = np.repeat(np.arange(per_second.size, dtype=np.float64), counts)
    times = starts + rng.random(starts.size)
    return Trace(name, times, text_lengths(rng, starts.size), start_epoch, notes)


def builtin_day(timezone: str = "UTC") -> Trace:
    """The deterministic diurnal day, starting at midnight in `timezone`."""
    rng = np.random.default_rng(BUILTIN_SEED)
    seconds = np.arange(24 * 3600, dtype=np.float64)
    start = datetime.fromisoformat(BUILTIN_START).replace(tzinfo=ZoneInfo(timezone))
    return from_rates("built-in day", builtin_rate(seconds / 3600.0), rng, start.timestamp(),
                      (f"derived from {ATTRIBUTION}",))
