"""What every subcommand's flags share: a parser that answers as kubectl and helm do, and
value parsers with bounds. Each error names its flag, for argparse to print as one line at
the usage of the (sub)command it belongs to, with exit code 2."""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

EXIT_USAGE = 2
EXIT_FAILURE = 1  # the command ran and could not do it (unreachable server, not found)

# Dates the engine can reason about: croniter and zoneinfo need a real calendar around
# them, and no decision of a running service is before 1970 or centuries ahead.
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

EXAMPLES = "examples:"
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")  # as argparse tells values from flags


class UsageError(Exception):
    """A bad flag value found after parsing; the message names the flag."""


class CommandError(Exception):
    """The command could not do what was asked (exit 1); the message says why."""


class Parser(argparse.ArgumentParser):
    """argparse with kubectl's manners.

    An unknown flag or command is reported at the usage of the (sub)command it was given
    to, with the closest known name, before any "the following arguments are required"
    (argparse would say `--load is required` about `--laod 100`). Flags are never
    abbreviated: a new flag must not change what an old script's `--lo` means. Epilogs
    keep their line breaks, for the examples every help ends with.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        tokens = list(sys.argv[1:] if args is None else args)
        self._check_names(tokens)
        return super().parse_known_args(tokens, namespace)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n"
                              f"See '{self.prog} --help'.\n")

    def _check_names(self, tokens: list[str]) -> None:
        takes_value = {name: action.nargs != 0 for action in self._actions
                       for name in action.option_strings}
        commands = [name for action in self._actions
                    if isinstance(action, argparse._SubParsersAction)
                    for name in action.choices]
        skip = False
        for token in tokens:
            if skip:
                skip = False
                continue
            if token == "--":
                return
            if token.startswith("-") and len(token) > 1 and not _NEGATIVE_NUMBER.match(token):
                name = token.split("=", 1)[0] if token.startswith("--") else token[:2]
                if name not in takes_value:
                    self.error(f"unknown flag {name}{_hint(name, takes_value)}")
                skip = takes_value[name] and "=" not in token and len(token) == len(name)
                continue
            if commands:  # the first word is the command; the rest is the command's
                if token not in commands:
                    self.error(f"unknown command {token!r}{_hint(token, commands)}")
                return


class _Formatter(argparse.HelpFormatter):
    """Descriptions wrapped, the examples epilog as written (RawDescriptionHelpFormatter
    keeps both raw, and this overrides the same hook)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(EXAMPLES):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _hint(name: str, known: Sequence[str] | dict[str, bool]) -> str:
    close = difflib.get_close_matches(name, list(known), n=2, cutoff=0.75)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def examples(*lines: str) -> str:
    """An epilog of examples, as kubectl's helps end."""
    return EXAMPLES + "\n" + "\n".join(f"  {line}" for line in lines)


def number(*, minimum: float = 0.0, maximum: float, above: bool = False
           ) -> Callable[[str], float]:
    """A finite number within [minimum, maximum] (above: strictly greater than minimum).
    argparse names the flag before the message."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text[:40]!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if value < minimum or (above and value == minimum):
            wanted = ("not be negative" if minimum == 0 and value < 0 else
                      f"be greater than {minimum:g}" if above else f"be at least {minimum:g}")
            raise argparse.ArgumentTypeError(f"must {wanted}, got {text[:40]!r}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g}, got {text[:40]!r}")
        return value

    return parse


def whole(*, minimum: int = 0, maximum: int) -> Callable[[str], int]:
    """A whole number within [minimum, maximum]."""

    def parse(text: str) -> int:
        stripped = text.strip()
        if not re.fullmatch(r"[-+]?\d{1,18}", stripped):
            raise argparse.ArgumentTypeError(f"must be a whole number from {minimum} to "
                                             f"{maximum}, got {text[:40]!r}")
        value = int(stripped)
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be from {minimum} to {maximum}, "
                                             f"got {text!r}")
        return value

    return parse


def iso_time(text: str) -> float:
    """An ISO-8601 time (UTC unless it says) between EARLIEST and LATEST, as POSIX seconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an ISO-8601 time like 2026-11-23T09:30:00+08:00, got {text[:60]!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        in_range = EARLIEST <= moment <= LATEST
    except OverflowError:  # an offset that pushes year 1 or 9999 off the calendar
        in_range = False
    if not in_range:
        raise argparse.ArgumentTypeError(
            f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}, got {text!r}")
    return moment.timestamp()


# simulate's flags: their messages start with the flag, as simulate's tests expect.
def non_negative_number(flag: str, maximum: float) -> Callable[[str], float]:
    return _named(flag, number(maximum=maximum))


def positive_number(flag: str, maximum: float) -> Callable[[str], float]:
    return _named(flag, number(maximum=maximum, above=True))


def _named(flag: str, parse: Callable[[str], float]) -> Callable[[str], float]:
    def named(text: str) -> float:
        try:
            return parse(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{flag} {exc}") from None

    return named
