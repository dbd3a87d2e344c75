"""Flag parsers shared by the subcommands: each error names its flag, for argparse to print
as one line with exit code 2."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime

EXIT_USAGE = 2


class UsageError(Exception):
    """A bad flag value found after parsing; the message names the flag."""


def non_negative_number(flag: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{flag} must be a finite number, got {text!r}")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{flag} must not be negative, got {text!r}")
        return value

    return parse


def iso_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--at must be an ISO-8601 time like 2026-11-23T09:30:00+08:00, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def positive_number(flag: str) -> Callable[[str], float]:
    parse_non_negative = non_negative_number(flag)

    def parse(text: str) -> float:
        value = parse_non_negative(text)
        if value == 0:
            raise argparse.ArgumentTypeError(f"{flag} must be greater than 0, got {text!r}")
        return value

    return parse
