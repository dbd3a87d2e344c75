"""Reading a trace CSV: the only file the simulator reads.

Two formats, told apart by the header:
- native ``timestamp,characters`` (header optional): one row per request; the timestamp
  is seconds or ISO-8601. Seconds below 1e9 are offsets from the start of the trace
  (anchored at the built-in day's Monday midnight); larger ones are POSIX times.
- Azure LLM inference trace ``TIMESTAMP,ContextTokens,GeneratedTokens``: GeneratedTokens
  is taken as the characters to synthesise (1 token ~ 1 Chinese character).

Every problem is reported as ``FILE:LINE: problem`` and raised as TraceError.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from elastic_tts.simulator.trace import BUILTIN_START, Trace, TraceError, make_trace

NATIVE_HEADER = ("timestamp", "characters")
AZURE_HEADER = ("timestamp", "contexttokens", "generatedtokens")
POSIX_THRESHOLD = 1e9  # 2001-09-09: anything smaller is an offset, not a POSIX time


def load_trace_file(path: str | Path, timezone: str = "UTC") -> Trace:
    name = str(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise TraceError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{name}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise TraceError(f"{name}: not a UTF-8 text file") from None
    except (OSError, csv.Error) as exc:
        raise TraceError(f"{name}: cannot read: {exc}") from None
    return parse_rows(name, rows, timezone)


def parse_rows(name: str, rows: list[list[str]], timezone: str = "UTC") -> Trace:
    """Parse CSV rows (line 1 first). Blank lines are skipped."""
    numbered = [(i + 1, row) for i, row in enumerate(rows) if any(c.strip() for c in row)]
    if not numbered:
        raise TraceError(f"{name}: the file is empty")
    header = tuple(c.strip().lower() for c in numbered[0][1])
    if header == AZURE_HEADER:
        body, azure = numbered[1:], True
    elif header == NATIVE_HEADER:
        body, azure = numbered[1:], False
    elif len(header) == 2 and not _is_number(header[1]):
        raise TraceError(
            f"{name}:{numbered[0][0]}: unknown header {','.join(numbered[0][1])!r}; expected "
            "'timestamp,characters' or 'TIMESTAMP,ContextTokens,GeneratedTokens'"
        )
    elif len(header) == 2:
        body, azure = numbered, False
    else:
        raise TraceError(
            f"{name}:{numbered[0][0]}: expected the header 'timestamp,characters' or "
            f"'TIMESTAMP,ContextTokens,GeneratedTokens', got {','.join(numbered[0][1])!r}"
        )
    if not body:
        raise TraceError(f"{name}: the file has a header but no requests")
    width = 3 if azure else 2
    times = np.empty(len(body), dtype=np.float64)
    chars = np.empty(len(body), dtype=np.int64)
    kinds: set[str] = set()
    for index, (line, row) in enumerate(body):
        where = f"{name}:{line}"
        if len(row) != width:
            raise TraceError(f"{where}: expected {width} columns, got {len(row)}")
        times[index], kind = _timestamp(where, row[0].strip())
        kinds.add(kind)
        chars[index] = _count(where, row[-1].strip(), "GeneratedTokens" if azure else
                              "characters", minimum=0 if azure else 1)
    if len(kinds) > 1:
        raise TraceError(f"{name}: timestamps mix {' and '.join(sorted(kinds))}; use one kind")
    if azure:
        chars = np.maximum(chars, 1)  # an empty generation still speaks something short
    first = float(times.min())
    kind = kinds.pop()
    if kind == "offsets":
        anchor = datetime.fromisoformat(BUILTIN_START).replace(tzinfo=ZoneInfo(timezone))
        start_epoch = anchor.timestamp() + first
    else:
        start_epoch = first
    fmt = "Azure LLM trace (GeneratedTokens as characters)" if azure else "timestamp,characters"
    return make_trace(Path(name).name, times - first, chars, start_epoch, (fmt,))


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
            raise TraceError(f"{where}: timestamp must be a finite number >= 0, got {text!r}")
        return value, ("POSIX seconds" if value >= POSIX_THRESHOLD else "offsets")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(
            f"{where}: timestamp {text!r} is neither seconds nor ISO-8601 "
            "(like 2023-11-16 18:15:46.680 or 2026-11-23T09:30:00+08:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp(), "POSIX seconds"


def _count(where: str, text: str, column: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise TraceError(f"{where}: {column} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise TraceError(f"{where}: {column} must be at least {minimum}, got {value}")
    return value
