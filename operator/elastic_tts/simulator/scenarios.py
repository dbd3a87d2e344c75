"""Traffic shapes the benchmark traces do not have, as seeded traces (issue 10: "there are
scenarios you will not see: flash crowds, near-idle hours with short bursts, ramps,
compressed days").

Each scenario is a pure function of its seed: a rate profile in requests per second,
second by second, drawn as Poisson arrivals with the built-in day's text lengths
(`trace.from_rates`). The seed moves the draws and, where the shape has random parts
(when the near-idle hours' bursts come, how long and how high), those too; the shape's
parameters stay fixed, so the seeds of one scenario are the same kind of traffic.

- steady: one hour at 3 requests/s (about 520 characters/s).
- flash crowd: one hour at 1 request/s, 10x for five minutes from minute 20, reached in
  ten seconds and left as quickly.
- near-idle bursts: three hours at one request a minute, with bursts of 20-90 s at 3-6
  requests/s every 4-20 minutes (a batch job, a team's demo): each burst is shorter than
  a GPU cold start, so only capacity already warm serves it.
- ramp: ten minutes at 0.3 requests/s, a linear climb to 6 over 30 minutes, 20 minutes
  there.
- compressed day: the built-in day's shape and rates, 12x faster: two hours with two
  peaks each and 8x between peak and trough, ramps twelve times steeper.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from elastic_tts.simulator.trace import (
    BUILTIN_START,
    FloatArray,
    Trace,
    builtin_rate,
    from_rates,
)

HOUR = 3600
COMPRESSION = 12.0


def _start() -> float:
    return datetime.fromisoformat(BUILTIN_START).replace(tzinfo=ZoneInfo("UTC")).timestamp()


def _seconds(span: int) -> FloatArray:
    return np.arange(span, dtype=np.float64)


def steady(seed: int) -> Trace:
    rates = np.full(HOUR, 3.0)
    return from_rates("steady", rates, np.random.default_rng([seed, 10]), _start(),
                      ("3 requests/s for 1 h",))


def flash_crowd(seed: int) -> Trace:
    t = _seconds(HOUR)
    rise = np.clip((t - 20 * 60) / 10.0, 0.0, 1.0) - np.clip((t - 25 * 60) / 10.0, 0.0, 1.0)
    return from_rates("flash crowd", 1.0 + 9.0 * rise, np.random.default_rng([seed, 11]),
                      _start(), ("1 request/s, 10x for 5 min from minute 20",))


def near_idle_bursts(seed: int) -> Trace:
    rng = np.random.default_rng([seed, 12])
    span = 3 * HOUR
    rates = np.full(span, 1.0 / 60.0)
    at = float(rng.uniform(4, 20) * 60)
    bursts = 0
    while at < span:
        length = int(rng.uniform(20, 90))
        rates[int(at):int(at) + length] = rng.uniform(3.0, 6.0)
        bursts += 1
        at += length + float(rng.uniform(4, 20) * 60)
    return from_rates("near-idle bursts", rates, rng, _start(),
                      (f"1 request/min for 3 h, {bursts} bursts of 20-90 s at 3-6 requests/s",))


def ramp(seed: int) -> Trace:
    t = _seconds(HOUR)
    rates = 0.3 + (6.0 - 0.3) * np.clip((t - 10 * 60) / (30 * 60), 0.0, 1.0)
    return from_rates("ramp", rates, np.random.default_rng([seed, 13]), _start(),
                      ("0.3 requests/s, ramp to 6 over 30 min from minute 10",))


def compressed_day(seed: int) -> Trace:
    span = int(24 * HOUR / COMPRESSION)
    rates = builtin_rate(_seconds(span) * COMPRESSION / HOUR)
    return from_rates("compressed day", rates, np.random.default_rng([seed, 14]), _start(),
                      (f"the built-in day's rates, {COMPRESSION:g}x faster",))


SCENARIOS: dict[str, Callable[[int], Trace]] = {
    "steady": steady,
    "flash crowd": flash_crowd,
    "near-idle bursts": near_idle_bursts,
    "ramp": ramp,
    "compressed day": compressed_day,
}
