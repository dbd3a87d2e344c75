"""Trace files (native and Azure), their errors, the transformations and the built-in day."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from elastic_tts.simulator.trace import (
    BUILTIN_PEAK_RPS,
    BUILTIN_PEAK_TO_TROUGH,
    MAX_REQUESTS,
    MAX_SPAN_SECONDS,
    TraceError,
    builtin_day,
    builtin_rate,
    scale,
    speedup,
)
from elastic_tts.simulator.tracefile import load_trace_file

from .helpers import START, steady_trace


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("label", "text", "times", "chars"),
    [
        ("native with header", "timestamp,characters\n0,100\n2.5,40\n", [0.0, 2.5], [100, 40]),
        ("native without header", "10,100\n12,40\n", [0.0, 2.0], [100, 40]),
        ("unsorted rows are sorted", "timestamp,characters\n5,1\n1,2\n", [0.0, 4.0], [2, 1]),
        ("ISO-8601", "timestamp,characters\n2026-11-23T09:00:00+08:00,100\n"
         "2026-11-23T09:00:01.5+08:00,20\n", [0.0, 1.5], [100, 20]),
        ("Azure", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
         "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,900\n",
         [0.0, 4.314579], [44, 500]),
        ("blank lines skipped", "timestamp,characters\n\n0,5\n\n", [0.0], [5]),
        ("a UTF-8 byte-order mark", "\ufefftimestamp,characters\n0,5\n", [0.0], [5]),
        ("a 31-day span, the longest", f"0,5\n{MAX_SPAN_SECONDS:.0f},6\n",
         [0.0, MAX_SPAN_SECONDS], [5, 6]),
        ("a huge count is capped", "0,99999999999999999999999\n", [0.0], [500]),
    ],
)
def test_trace_files_parse(tmp_path, label, text, times, chars):
    trace = load_trace_file(write(tmp_path, text))
    assert trace.times.tolist() == pytest.approx(times), label
    assert trace.chars.tolist() == chars, label


def test_timestamps_anchor_the_schedule_clock(tmp_path):
    iso = load_trace_file(write(tmp_path, "timestamp,characters\n2026-11-23T01:00:00Z,1\n"))
    assert iso.start_epoch == START + 3600
    offsets = load_trace_file(write(tmp_path, "timestamp,characters\n60,1\n"))
    assert offsets.start_epoch == START + 60  # offsets count from the built-in Monday
    posix = load_trace_file(write(tmp_path, f"timestamp,characters\n{START + 7},1\n"))
    assert posix.start_epoch == START + 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "trace.csv: the file is empty"),
        ("timestamp,characters\n", "has a header but no requests"),
        ("time,chars\n1,2\n", "trace.csv:1: unknown header 'time,chars'"),
        ("a,b,c,d\n", "trace.csv:1: expected the header"),
        ("timestamp,characters\n0,100\n1,abc\n", "trace.csv:3: characters must be a whole "
         "number, got 'abc'"),
        ("timestamp,characters\n0,100\n1\n", "trace.csv:3: expected 2 columns, got 1"),
        ("timestamp,characters\nyesterday,5\n", "trace.csv:2: timestamp 'yesterday' is neither"),
        ("timestamp,characters\n-1,5\n", "trace.csv:2: timestamp must be a finite number >= 0"),
        ("timestamp,characters\n0,0\n", "trace.csv:2: characters must be at least 1, got 0"),
        ("timestamp,characters\n0,5\n2026-11-23T00:00:00,5\n", "timestamps mix"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1,x\n",
         "trace.csv:2: GeneratedTokens must be a whole number"),
        # issue 13: spans and timestamps the simulator cannot replay, refused at their row
        ("0,5\n1,5\n10000000,5\n", "trace.csv:3: the trace spans more than 31 days "
         "(this row is 116 days from another)"),
        ("0,5\n999999999,5\n", "trace.csv:2: the trace spans more than 31 days"),
        ("timestamp,characters\n1e15,5\n", "trace.csv:2: timestamp 1e15 is after 2200-01-01"),
        ("timestamp,characters\n1700000000,5\n1e15,5\n", "trace.csv:3: timestamp 1e15 is "
         "after"),
        ("timestamp,characters\n0001-01-01T00:00:00,5\n", "trace.csv:2: timestamp "
         "0001-01-01T00:00:00 is outside 1970-01-02 to 2200-01-01"),
        ("timestamp,characters\n9999-12-31T23:59:59,5\n", "trace.csv:2: timestamp "
         "9999-12-31T23:59:59 is outside"),
        ("timestamp,characters\n9999-12-31T23:59:59-23:59,5\n", "is outside"),
        ("timestamp,characters\n2026-11-23T00:00:00,5\n2026-12-30T00:00:00,5\n",
         "trace.csv:3: the trace spans more than 31 days (this row is 37 days from another)"),
        ("timestamp,characters\n0,5\n1," + "9" * 5000 + "\n", "trace.csv:3: a line longer "
         "than 4096 characters"),
        ("timestamp,characters\n" + "x" * 100_000, "trace.csv:2: a line longer than 4096"),
        ("timestamp,characters\nnan,5\n", "timestamp must be a finite number >= 0"),
        ("timestamp,characters\ninf,5\n", "timestamp must be a finite number >= 0"),
    ],
)
def test_malformed_files_name_the_line_and_the_problem(tmp_path, text, message):
    with pytest.raises(TraceError, match=None) as caught:
        load_trace_file(write(tmp_path, text))
    assert message in str(caught.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(TraceError, match="no such file"):
        load_trace_file(tmp_path / "missing.csv")
    with pytest.raises(TraceError, match="is a directory"):
        load_trace_file(tmp_path)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TraceError, match="not a UTF-8 text file"):
        load_trace_file(binary)


@pytest.mark.parametrize("factor", [4.0, 2.5, 0.5])
def test_scale_multiplies_the_rate_per_minute(factor):
    trace = steady_trace(2.0, 600)
    scaled = scale(trace, factor)
    assert scaled.requests == pytest.approx(trace.requests * factor, rel=0.06)
    per_minute = np.bincount((scaled.times // 60).astype(int))
    assert per_minute.min() >= 120 * factor * 0.75  # spread within each gap, not clumped
    assert np.all(np.diff(scaled.times) >= 0)
    if factor == 4.0:
        assert scaled.requests == trace.requests * 4
        assert np.unique(scaled.times).size == scaled.requests  # no two at the same instant


def test_scale_and_speedup_refuse_what_cannot_be_replayed():
    trace = steady_trace(1.0, 100)
    with pytest.raises(TraceError, match=re.escape(
            f"--scale 1e+09 makes about 100,000,000,000 requests, more than the "
            f"{MAX_REQUESTS:,}")):
        scale(trace, 1e9)
    with pytest.raises(TraceError, match="--speedup 1e-06 stretches the trace to 1,146 days, "
                       "more than the 31 days"):
        speedup(trace, 1e-6)


def test_a_long_three_row_trace_costs_no_more_memory_than_a_short_one(tmp_path):
    """Memory follows the rows, never the span: a month-long sparse trace is three rows."""
    sparse = load_trace_file(write(tmp_path, f"0,5\n1,5\n{MAX_SPAN_SECONDS - 1:.0f},5\n"))
    assert sparse.requests == 3
    assert sparse.times.nbytes + sparse.chars.nbytes == 3 * 16


def test_speedup_compresses_time():
    trace = steady_trace(1.0, 100)
    fast = speedup(trace, 4.0)
    assert fast.times.tolist() == pytest.approx((trace.times / 4).tolist())
    assert "time compressed x4" in fast.notes


def test_builtin_day_is_deterministic_and_has_the_documented_shape():
    day = builtin_day()
    assert np.array_equal(day.times, builtin_day().times)
    assert day.duration == 86400
    rate = builtin_rate(np.linspace(0, 24, 1441))
    assert rate.max() == pytest.approx(BUILTIN_PEAK_RPS)
    assert rate.max() / rate.min() == pytest.approx(BUILTIN_PEAK_TO_TROUGH)
    hourly = np.bincount((day.times // 3600).astype(int)) / 3600
    assert int(np.argmax(hourly[:15])) == 10 and int(np.argmax(hourly[15:])) + 15 == 20
    assert int(np.argmin(hourly)) in (3, 4)
    assert np.median(day.chars) == pytest.approx(129, abs=5)
    assert day.chars.max() <= 500


READ_AND_MEASURE = """
import resource, sys
import numpy
from elastic_tts.simulator.tracefile import load_trace_file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
trace = load_trace_file(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(trace.requests, (after - before) * 1024)
"""


def test_reading_memory_follows_the_rows(tmp_path):
    """Half a million rows add well under 64 bytes each to the peak RSS (the list-of-rows reader
    took 386); the figure for ten million is bench/bench_trace_read.py's."""
    rows = 500_000
    path = tmp_path / "rows.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("timestamp,characters\n")
        for start in range(0, rows, 100_000):
            out.write("".join(f"{i * 0.0864:.4f},{80 + i % 300}\n"
                              for i in range(start, start + 100_000)))
    done = subprocess.run([sys.executable, "-c", READ_AND_MEASURE, str(path)],
                          capture_output=True, text=True, timeout=120, check=True)
    requests, grown = (int(word) for word in done.stdout.split())
    assert requests == rows
    assert grown / rows < 64, f"{grown / rows:.0f} bytes a row"
