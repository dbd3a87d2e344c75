"""Reading a trace CSV: the only file the simulator reads.

Two formats, told apart by the header:
- native ``timestamp,characters`` (header optional): one row per request; the timestamp
  is seconds or ISO-8601. Seconds below 1e9 are offsets from the start of the trace
  (anchored at the built-in day's Monday midnight); larger ones are POSIX times.
- Azure LLM inference trace ``TIMESTAMP,ContextTokens,GeneratedTokens``: GeneratedTokens
  is taken as the characters to synthesise (1 token ~ 1 Chinese character).

The file is streamed: each row goes into two packed arrays (16 bytes a request), never
into a list of rows, so memory follows the number of requests. What the simulator cannot
replay is refused at the row that shows it, before the rest is read: a line longer than
`MAX_LINE`, more than `MAX_REQUESTS` rows, a span over `MAX_SPAN_SECONDS`, a timestamp
outside 1970-2200. A UTF-8 byte-order mark is accepted. Every problem is reported as
``FILE:LINE: problem`` and raised as TraceError.
"""

from __future__ import annotations

import csv
import math
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from zoneinfo import ZoneInfo

import numpy as np

from elastic_tts.simulator.trace import (
    BUILTIN_START,
    MAX_REQUESTS,
    MAX_SPAN_SECONDS,
    Trace,
    TraceError,
    make_trace,
    span_text,
)

NATIVE_HEADER = ("timestamp", "characters")
AZURE_HEADER = ("timestamp", "contexttokens", "generatedtokens")
POSIX_THRESHOLD = 1e9  # 2001-09-09: anything smaller is an offset, not a POSIX time
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # a schedule's calendar stops somewhere
MAX_LINE = 4096  # characters; a row is three short fields
MAX_COUNT = 2**31  # characters or tokens in one row: far above the 500 a text is capped at


def load_trace_file(path: str | Path, timezone: str = "UTC") -> Trace:
    name = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return read_trace(name, _lines(name, handle), timezone)
    except FileNotFoundError:
        raise TraceError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{name}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise TraceError(f"{name}: not a UTF-8 text file") from None
    except (OSError, csv.Error) as exc:
        raise TraceError(f"{name}: cannot read: {exc}") from None


def _lines(name: str, handle: IO[str]) -> Iterator[str]:
    """The file's lines, each bounded: a file with no line breaks is not read whole."""
    number = 0
    while line := handle.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE:
            raise TraceError(f"{name}:{number}: a line longer than {MAX_LINE} characters; "
                             "a trace has one short request per line")
        yield line


def read_trace(name: str, lines: Iterator[str], timezone: str = "UTC") -> Trace:
    """Parse CSV lines (line 1 first) into a Trace. Blank lines are skipped."""
    reader = csv.reader(lines)
    rows = ((reader.line_num, row) for row in reader if any(c.strip() for c in row))
    first = next(rows, None)
    if first is None:
        raise TraceError(f"{name}: the file is empty")
    header = tuple(c.strip().lower() for c in first[1])
    azure = header == AZURE_HEADER
    if azure or header == NATIVE_HEADER:
        body: Iterator[tuple[int, list[str]]] = rows
    elif len(header) == 2 and not _is_number(header[1]):
        raise TraceError(
            f"{name}:{first[0]}: unknown header {','.join(first[1])[:80]!r}; expected "
            "'timestamp,characters' or 'TIMESTAMP,ContextTokens,GeneratedTokens'")
    elif len(header) == 2:
        body = _chain(first, rows)
    else:
        raise TraceError(
            f"{name}:{first[0]}: expected the header 'timestamp,characters' or "
            f"'TIMESTAMP,ContextTokens,GeneratedTokens', got {','.join(first[1])[:80]!r}")
    times, chars, kind = _columns(name, body, azure)
    if not times:
        raise TraceError(f"{name}: the file has a header but no requests")
    offsets = np.frombuffer(times, dtype=np.float64)
    counts = np.frombuffer(chars, dtype=np.int64)
    if azure:
        counts = np.maximum(counts, 1)  # an empty generation still speaks something short
    start = float(offsets.min())
    offsets -= start
    if kind == "offsets":
        anchor = datetime.fromisoformat(BUILTIN_START).replace(tzinfo=ZoneInfo(timezone))
        start_epoch = anchor.timestamp() + start
    else:
        start_epoch = start
    fmt = "Azure LLM trace (GeneratedTokens as characters)" if azure else "timestamp,characters"
    return make_trace(Path(name).name, offsets, counts, start_epoch, (fmt,))


def _chain(first: tuple[int, list[str]], rest: Iterator[tuple[int, list[str]]]
           ) -> Iterator[tuple[int, list[str]]]:
    yield first
    yield from rest


def _columns(name: str, body: Iterator[tuple[int, list[str]]], azure: bool
             ) -> tuple[array[float], array[int], str]:
    width = 3 if azure else 2
    column = "GeneratedTokens" if azure else "characters"
    minimum = 0 if azure else 1
    times: array[float] = array("d")
    chars: array[int] = array("q")
    kind = ""
    low, high = math.inf, -math.inf
    for line, row in body:
        where = f"{name}:{line}"
        if len(times) == MAX_REQUESTS:
            raise TraceError(f"{where}: more than {MAX_REQUESTS:,} requests, the most the "
                             "simulator replays; sample the trace or split it")
        if len(row) != width:
            raise TraceError(f"{where}: expected {width} columns, got {len(row)}")
        moment, this_kind = _timestamp(where, row[0].strip())
        if kind and this_kind != kind:
            raise TraceError(f"{where}: timestamps mix {kind} and {this_kind}; use one kind")
        kind = this_kind
        low, high = min(low, moment), max(high, moment)
        if high - low > MAX_SPAN_SECONDS:
            raise TraceError(f"{where}: the trace spans more than {span_text(MAX_SPAN_SECONDS)}"
                             f" (this row is {span_text(high - low)} from another), the "
                             "longest the simulator replays; split it")
        times.append(moment)
        chars.append(_count(where, row[-1].strip(), column, minimum))
    return times, chars, kind


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _timestamp(where: str, text: str) -> tuple[float, str]:
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or value < 0:
            raise TraceError(f"{where}: timestamp must be a finite number >= 0, "
                             f"got {text[:40]!r}")
        if value < POSIX_THRESHOLD:
            return value, "offsets"
        if value > LATEST.timestamp():
            raise TraceError(f"{where}: timestamp {text[:40]} is after {LATEST:%Y-%m-%d}; "
                             f"POSIX seconds run from {POSIX_THRESHOLD:g} (2001-09-09) to "
                             f"{LATEST.timestamp():.0f}, and smaller numbers are offsets")
        return value, "POSIX seconds"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(
            f"{where}: timestamp {text[:60]!r} is neither seconds nor ISO-8601 "
            "(like 2023-11-16 18:15:46.680 or 2026-11-23T09:30:00+08:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        in_range = EARLIEST <= moment <= LATEST
    except OverflowError:  # an offset that pushes year 1 or 9999 off the calendar
        in_range = False
    if not in_range:
        raise TraceError(f"{where}: timestamp {text[:60]} is outside {EARLIEST:%Y-%m-%d} to "
                         f"{LATEST:%Y-%m-%d}")
    return moment.timestamp(), "POSIX seconds"


def _count(where: str, text: str, column: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise TraceError(f"{where}: {column} must be a whole number, got {text[:40]!r}"
                         ) from None
    if value < minimum:
        raise TraceError(f"{where}: {column} must be at least {minimum}, got {text[:40]}")
    return min(value, MAX_COUNT)  # longer texts are capped later, and counted as such
