"""Benchmark: reading a 10-million-row trace CSV, its peak memory and its time.

The rows (one day, 116 requests/s, 80-379 characters) are written into a FIFO by a
thread, so the benchmark needs no disk; a fresh interpreter reads them with
`load_trace_file` and reports its own peak RSS (ru_maxrss), with the interpreter and
numpy already loaded counted apart. `--rows N` changes the count.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROWS = 10_000_000
DAY = 86_400.0
READER = """
import resource, sys, time
import numpy
from elastic_tts.simulator.tracefile import load_trace_file
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
trace = load_trace_file(sys.argv[1])
seconds = time.monotonic() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(trace.requests, f"{seconds:.1f}", base // 1024, peak // 1024)
"""


def feed(path: Path, rows: int) -> None:
    step = DAY / rows
    with path.open("w", encoding="utf-8") as out:
        out.write("timestamp,characters\n")
        for start in range(0, rows, 100_000):
            out.write("".join(f"{i * step:.3f},{80 + i % 300}\n"
                              for i in range(start, min(rows, start + 100_000))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        fifo = Path(scratch) / "trace.csv"
        os.mkfifo(fifo)
        writer = threading.Thread(target=feed, args=(fifo, args.rows))
        writer.start()
        result = subprocess.run([sys.executable, "-c", READER, str(fifo)],
                                capture_output=True, text=True, check=False)
        writer.join()
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        return 1
    requests, seconds, base, peak = result.stdout.split()
    print(f"trace read: {int(requests):,} rows in {seconds} s; peak RSS {peak} MiB "
          f"({base} MiB before reading: interpreter and numpy), "
          f"{(int(peak) - int(base)) * 1024 * 1024 / int(requests):.0f} bytes per row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
