"""Cron start times in an IANA timezone, correct across daylight-saving changes.

croniter walks the schedule in *local wall-clock* time (naive datetimes); zoneinfo turns
each wall-clock time into an instant. That gives cron's usual DST semantics:
- spring forward: a start inside the skipped hour (02:30 in New York) fires at the
  instant that wall time would have had, i.e. 03:30 local, once;
- fall back: a start inside the repeated hour fires once, at its first occurrence.

Fire times have whole-minute resolution, so lookups are memoised per minute. That
keeps `decide` well under a millisecond without changing any result.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter


class CronError(ValueError):
    """An unusable cron expression or timezone."""


def validate_cron(expression: str) -> None:
    fields = expression.split()
    if len(fields) != 5:
        raise CronError(
            f"cron expression {expression!r} must have 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    try:
        croniter(expression, datetime(2024, 1, 1))
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        raise CronError(f"invalid cron expression {expression!r}: {exc}") from None


@lru_cache(maxsize=64)
def validate_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown IANA timezone {name!r} (for example 'Asia/Shanghai')") from None


def _to_instant(wall: datetime, zone: ZoneInfo) -> float:
    # fold=0: a repeated wall time means its first occurrence; a skipped one maps forward.
    return wall.replace(tzinfo=zone, fold=0).timestamp()


def _wall(instant: float, zone: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(instant, UTC).astimezone(zone).replace(tzinfo=None)


@lru_cache(maxsize=4096)
def _prev_fire(expression: str, timezone: str, minute: int) -> float | None:
    zone = validate_timezone(timezone)
    instant = minute * 60.0
    # Start one hour ahead in wall time: inside a fall-back fold a wall time later than
    # ours can still be an earlier instant. Candidates after the instant are skipped.
    it = croniter(expression, _wall(instant, zone) + timedelta(hours=1, seconds=1))
    for _ in range(128):
        try:
            candidate = _to_instant(it.get_prev(datetime), zone)
        except CroniterBadDateError:
            return None
        if candidate <= instant:
            return candidate
    return None


@lru_cache(maxsize=4096)
def _next_fire(expression: str, timezone: str, minute: int) -> float | None:
    zone = validate_timezone(timezone)
    instant = minute * 60.0
    it = croniter(expression, _wall(instant, zone))
    for _ in range(128):  # bounded: inside a fold, up to an hour of wall times map earlier
        try:
            candidate = _to_instant(it.get_next(datetime), zone)
        except CroniterBadDateError:
            return None
        if candidate > instant:
            return candidate
    return None


def last_start(expression: str, timezone: str, now: float) -> float | None:
    """The latest start at or before ``now`` (POSIX seconds), or None."""
    return _prev_fire(expression, timezone, int(now // 60))


def next_start(expression: str, timezone: str, now: float) -> float | None:
    """The first start strictly after ``now`` (POSIX seconds), or None."""
    found = _next_fire(expression, timezone, int(now // 60))
    if found is not None and found <= now:  # a start within this same minute, already passed
        return _next_fire(expression, timezone, int(now // 60) + 1)
    return found
