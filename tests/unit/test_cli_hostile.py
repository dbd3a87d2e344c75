"""Hostile input to the commands a user types, one row per case, each run as the real
`elastic-tts` in its own process: each ends in one line naming the flag, field or file,
with exit code 2 (bad input) or 1 (a server or process that cannot be used), within
`QUICK` seconds and `MEMORY` bytes of address space; never a traceback, never a hang,
JSON always valid.

The rows include every finding of issue 13's "Tracebacks and hangs" list (marked
"(issue)"); the spec file's own hostile rows are also in test_spec.py, the trace
reader's in tests/simulator/test_traces.py."""

from __future__ import annotations

import http.server
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
FULL = str(EXAMPLES / "full.yaml")
MINIMAL = str(EXAMPLES / "minimal.yaml")
QUICK = 10.0  # seconds: every row answers well within this, even on a loaded machine
MEMORY = 2 * 1024**3  # address space: the interpreter, numpy and matplotlib fit in a third


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run(argv: list[str], env: Mapping[str, str | None] | None = None,
        cwd: Path | None = None) -> tuple[int, str, str, float]:
    """The real command line in a fresh process, its memory capped and its time bounded
    (a hang fails the row at 3 x QUICK instead of stalling the suite)."""
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "elastic_tts.cli", *argv],
                              capture_output=True, text=True, env=environment, cwd=cwd,
                              preexec_fn=_limit_memory, timeout=3 * QUICK, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"elastic-tts {' '.join(argv)[:200]} did not answer in {3 * QUICK:g} s")
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def assert_one_line(err: str) -> None:
    assert "Traceback" not in err
    problems = [line for line in err.splitlines()
                if line.startswith("elastic-tts") and ("error" in line or ": " in line)
                and not line.startswith("See ")]
    assert len(problems) == 1, err


# --- loopback servers that misbehave ----------------------------------------------------

@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """Accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """Refuses connections: bound (so no other server gets it) and not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, str, bytes]]] = {}

    def _answer(self) -> None:
        status, kind, body = self.routes.get(self.path.split("?")[0], (404, "text/html",
                                                                       b"<h1>nope</h1>"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        """No access log: the test reads only the answers."""


@pytest.fixture(scope="module")
def web_page() -> Iterator[str]:
    """An HTTP server that is neither a worker nor an API server: HTML everywhere, except
    a /readyz that says ready (so calibrate reaches /tts)."""

    class Handler(_Handler):
        routes: ClassVar[dict[str, tuple[int, str, bytes]]] = {
            "/readyz": (200, "application/json", b'{"status": "ready"}'),
            "/apis/elastictts.io/v1alpha1/namespaces/default/ttsservices":
                (200, "text/html", b"<html>")}

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def kubeconfig(tmp_path: Path, server: str) -> str:
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "here",
           "clusters": [{"name": "here", "cluster": {"server": server}}],
           "users": [{"name": "me", "user": {"token": "x"}}],
           "contexts": [{"name": "here", "context": {"cluster": "here", "user": "me"}}]}
    path = tmp_path / f"kubeconfig-{len(list(tmp_path.glob('kubeconfig-*')))}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


# --- explain ------------------------------------------------------------------------------

EXPLAIN = [
    ("flag overflow 1.7e308 (issue)", ["--spec", MINIMAL, "--load", "1.7e308", "--metric",
                                       "requests"], 2, "argument --load: must be at most 1e+09"),
    ("NaN load", ["--spec", MINIMAL, "--load", "nan"], 2,
     "argument --load: must be a finite number"),
    ("minus infinity", ["--spec", MINIMAL, "--load=-inf"], 2, "must be a finite number"),
    ("empty load", ["--spec", MINIMAL, "--load", ""], 2, "argument --load: must be a number"),
    ("misspelt flag --laod (issue)", ["--spec", MINIMAL, "--laod", "100"], 2,
     "unknown flag --laod (did you mean --load?)"),
    ("year 1", ["--spec", FULL, "--load", "5", "--at", "0001-01-01T00:00:00"], 2,
     "argument --at: must be between 1970-01-02 and 2200-01-01"),
    ("year 9999 past midnight", ["--spec", FULL, "--load", "5", "--at",
                                 "9999-12-31T23:59:59-23:59"], 2, "must be between"),
    ("month 13", ["--spec", FULL, "--load", "5", "--at", "2026-13-01"], 2,
     "must be an ISO-8601 time"),
    ("the chart's values as a spec (issue)",
     ["--spec", str(ROOT / "charts" / "elastic-tts" / "values.yaml"), "--load", "1"], 2,
     "values.yaml: not a TTSService spec"),
    ("the install bundle as a spec", ["--spec", str(ROOT / "manifests" / "install.yaml"),
                                      "--load", "1"], 2, "none of its 7 YAML documents"),
    ("a directory", ["--spec", str(ROOT), "--load", "1"], 2, "is a directory"),
    ("an endless file", ["--spec", "/dev/zero", "--load", "1"], 2, "larger than 4 MiB"),
]


@pytest.mark.parametrize(("label", "argv", "code", "needle"), EXPLAIN,
                         ids=[row[0] for row in EXPLAIN])
def test_explain(label: str, argv: list[str], code: int, needle: str) -> None:
    got, _, err, seconds = run(["explain", *argv])
    assert (got, seconds < QUICK) == (code, True), (label, err)
    assert needle in err
    assert_one_line(err)


HOSTILE_SPECS = [
    ("300-digit number (issue)", "throughput: " + "9" * 300, "must be at most 1000000"),
    ("NaN (issue)", "throughput: .nan", "must be a finite number, got nan"),
    ("infinity (issue)", "throughput: .inf", "must be a finite number, got inf"),
    ("1e30 (issue)", "throughput: 1e30", "must be at most 1000000, got 1e+30"),
    ("5000-deep nesting (issue)", "throughput: 1\n    affinity: " + "[" * 5000 + "]" * 5000,
     "nested deeper than 64 levels"),
    ("binary", None, "cannot read"),
]


@pytest.mark.parametrize("command", ["explain", "simulate"])
@pytest.mark.parametrize(("label", "pool_line", "needle"), HOSTILE_SPECS,
                         ids=[row[0] for row in HOSTILE_SPECS])
def test_hostile_spec_files(tmp_path: Path, command: str, label: str, pool_line: str | None,
                            needle: str) -> None:
    path = tmp_path / "spec.yaml"
    if pool_line is None:
        path.write_bytes(bytes(range(256)) * 64)
    else:
        path.write_text("pools:\n  cpu:\n    accelerator: cpu\n    costPerHour: 0.1\n    "
                        + pool_line + "\n")
    flags = ["--load", "1"] if command == "explain" else ["--no-plot"]
    got, out, err, seconds = run([command, "--spec", str(path), *flags])
    assert (got, out, seconds < QUICK) == (2, "", True), err
    assert needle in err
    assert_one_line(err)


EXTREME_BUT_VALID = [
    ("a billion chars/s at peak", [FULL, "1e9", "--at", "2026-11-23T12:00:00+08:00"]),
    ("a billion requests/s", [FULL, "1e9", "--metric", "requests"]),
    ("the last day allowed", [FULL, "5", "--at", "2199-12-31T23:59:59+00:00"]),
    ("a BOM", ["BOM", "5"]),
    ("absurd but admitted pool figures", ["ABSURD", "1e9"]),
]


@pytest.mark.parametrize(("label", "argv"), EXTREME_BUT_VALID,
                         ids=[row[0] for row in EXTREME_BUT_VALID])
def test_explain_extreme_input_gives_valid_json(tmp_path: Path, label: str,
                                                argv: list[str]) -> None:
    spec, load, *rest = argv
    if spec == "BOM":
        spec = str(tmp_path / "bom.yaml")
        Path(spec).write_bytes(b"\xef\xbb\xbf" + Path(MINIMAL).read_bytes())
    elif spec == "ABSURD":
        spec = str(tmp_path / "absurd.yaml")
        Path(spec).write_text(
            "pools:\n  cpu: {accelerator: cpu, costPerHour: 1000, throughput: 1.0e-300,\n"
            "        maxReplicas: 1000}\n"
            "scaling: {metric: requests, charactersPerRequest: 100000,\n"
            "          targetUtilization: 1.0e-300}\n")
    got, out, err, seconds = run(["explain", "--spec", spec, "--load", load, *rest,
                                          "--json"])
    assert (got, err, seconds < QUICK) == (0, "", True)
    result = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert isinstance(result["cost_per_hour"], float | int)


# --- simulate -----------------------------------------------------------------------------

SMALL = "timestamp,characters\n" + "".join(f"{i / 2:g},{80 + i}\n" for i in range(120))
BIG = "timestamp,characters\n" + "".join(f"{i / 10:g},100\n" for i in range(30_000))
LONG = "timestamp,characters\n" + "".join(f"{i / 10:g},100\n" for i in range(500_000))

SIMULATE = [
    # (label, the trace file's content (None: no --trace), more flags, exit code, needle)
    ("three rows spanning 1e7 s (issue)", "0,5\n1,5\n10000000,5\n", [], 2,
     "trace.csv:3: the trace spans more than 31 days (this row is 116 days from another)"),
    ("a span of 1e8 s (issue)", "timestamp,characters\n0,5\n100000000,5\n", [], 2,
     "trace.csv:3: the trace spans more than 31 days"),
    ("a span of 1e9 s (issue)", "0,5\n999999999,5\n", [], 2, "trace.csv:2: the trace spans"),
    ("ISO year 1 (issue)", "timestamp,characters\n0001-01-01T00:00:00,5\n", [], 2,
     "trace.csv:2: timestamp 0001-01-01T00:00:00 is outside 1970-01-02 to 2200-01-01"),
    ("ISO year 9999 (issue)", "timestamp,characters\n9999-12-31T23:59:59,5\n", [], 2,
     "trace.csv:2: timestamp 9999-12-31T23:59:59 is outside"),
    ("ISO years 2026 to 9999 (issue)", "timestamp,characters\n2026-01-01T00:00:00,5\n"
     "9999-01-01T00:00:00,5\n", [], 2, "trace.csv:3: timestamp 9999-01-01T00:00:00 is outside"),
    ("POSIX 1e15 (issue)", "timestamp,characters\n1e15,5\n", [], 2,
     "trace.csv:2: timestamp 1e15 is after 2200-01-01"),
    ("POSIX 1e15 after a real time (issue)", "timestamp,characters\n1700000000,5\n1e15,5\n",
     [], 2, "trace.csv:3: timestamp 1e15 is after 2200-01-01"),
    ("--scale 1e9 (issue)", SMALL, ["--scale", "1e9"], 2, "--scale must be at most 1000"),
    ("--scale 1000 of 30,000 rows", BIG, ["--scale", "1000"], 2,
     "trace.csv: --scale 1000 makes about 30,000,000 requests, more than the 20,000,000"),
    ("--speedup 1e-9", SMALL, ["--speedup", "1e-9"], 2,
     "trace.csv: --speedup 1e-09 stretches the trace to"),
    ("--speedup beyond its bound", SMALL, ["--speedup", "1e300"], 2,
     "--speedup must be at most 10000"),
    ("NaN scale", SMALL, ["--scale", "nan"], 2, "--scale must be a finite number"),
    ("negative spot notice", SMALL, ["--spot-notice=-1"], 2, "--spot-notice must not be "
                                                              "negative"),
    ("a 40-digit seed", SMALL, ["--seed", "9" * 40], 2, "argument --seed: must be a whole "
                                                        "number from 0 to 4294967295"),
    ("misspelt --seeed (issue)", SMALL, ["--seeed", "3"], 2,
     "unknown flag --seeed (did you mean --seed"),
    ("an SLO target above 1", SMALL, ["--slo-target", "2"], 2,
     "argument --slo-target: must be at most 1"),
    ("a line without end", "/dev/zero", [], 2, "/dev/zero:1: a line longer than 4096"),
    ("a binary trace", b"\xff\xfe\x00" * 1000, [], 2, "trace.csv: not a UTF-8 text file"),
    ("500,000 rows, then a bad one", LONG + "yesterday,5\n", [], 2,
     "trace.csv:500002: timestamp 'yesterday' is neither seconds nor ISO-8601"),
    ("unwritable --plot, before the work (issue)", None,
     ["--plot", "/proc/forbidden/x.png"], 2, "--plot /proc/forbidden/x.png: cannot write"),
    ("--write-spec into a directory", None, ["--write-spec", "/tmp"], 2,
     "--write-spec /tmp: is a directory, not a file"),
    ("the chart's values as a spec (issue)", SMALL,
     ["--spec", str(ROOT / "charts" / "elastic-tts" / "values.yaml")], 2,
     "values.yaml: not a TTSService spec"),
]


@pytest.mark.parametrize(("label", "trace", "argv", "code", "needle"), SIMULATE,
                         ids=[row[0] for row in SIMULATE])
def test_simulate(tmp_path: Path, label: str, trace: str | bytes | None, argv: list[str],
                  code: int, needle: str) -> None:
    flags = ["--no-plot", *argv] if "--plot" not in argv else argv
    if trace == "/dev/zero":
        flags += ["--trace", trace]
    elif trace is not None:
        path = tmp_path / "trace.csv"
        if isinstance(trace, bytes):
            path.write_bytes(trace)
        else:
            path.write_text(trace, encoding="utf-8")
        flags += ["--trace", str(path)]
    got, out, err, seconds = run(["simulate", *flags])
    assert (got, out, seconds < QUICK) == (code, "", True), (label, seconds, err)
    assert needle in err
    assert_one_line(err)


def test_simulate_a_bom_and_absurd_figures_give_valid_json(tmp_path: Path) -> None:
    """A byte-order mark is accepted (issue), and a spec at the edge of its bounds still
    prints JSON every parser reads: no Infinity, no NaN."""
    trace = tmp_path / "bom.csv"
    trace.write_bytes(b"\xef\xbb\xbf" + SMALL.encode())
    spec = tmp_path / "absurd.yaml"
    spec.write_text("pools:\n  cpu: {accelerator: cpu, costPerHour: 1000, throughput: "
                    "1.0e-300,\n        maxReplicas: 1000}\n")
    for argv in (["--trace", str(trace)], ["--trace", str(trace), "--spec", str(spec)]):
        got, out, err, seconds = run(["simulate", *argv, "--no-plot", "--json"])
        assert (got, seconds < QUICK) == (0, True), err
        assert "Traceback" not in err
        result = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
        assert result["trace"]["requests"] == 120
        assert set(result["verdict"]) >= {"policy", "monthly_cost"}


# --- calibrate ----------------------------------------------------------------------------

CALIBRATE_FLAGS = [
    ("not http", ["--url", "ftp://127.0.0.1/"], "argument --url: must be http://host:port"),
    ("no host", ["--url", "http://"], "must be http://host:port"),
    ("port out of range", ["--url", "http://127.0.0.1:99999"], "argument --url: has a bad port"),
    ("a query", ["--url", "http://127.0.0.1:1/?x=1"], "without ? or #"),
    ("NaN SLO", ["--url", "http://127.0.0.1:1", "--slo", "nan"],
     "argument --slo: must be a finite number"),
    ("zero SLO", ["--url", "http://127.0.0.1:1", "--slo", "0"], "must be greater than 0"),
    ("huge SLO", ["--url", "http://127.0.0.1:1", "--slo", "1e308"], "must be at most 3600"),
    ("attainment above 1", ["--url", "http://127.0.0.1:1", "--attainment", "1.5"],
     "must be at most 1"),
    ("zero concurrency", ["--url", "http://127.0.0.1:1", "--max-concurrency", "0"],
     "argument --max-concurrency: must be from 1 to 1024"),
    ("a billion clients", ["--url", "http://127.0.0.1:1", "--max-concurrency", "1e9"],
     "must be a whole number from 1 to 1024"),
    ("a 40-digit count", ["--url", "http://127.0.0.1:1", "--max-requests", "9" * 40],
     "must be a whole number"),
    ("short texts", ["--url", "http://127.0.0.1:1", "--chars", "5"], "must be from 12"),
    ("sub-second levels", ["--url", "http://127.0.0.1:1", "--step-seconds", "0.1"],
     "must be at least 1"),
    ("endless ramp", ["--url", "http://127.0.0.1:1", "--max-seconds", "inf"],
     "must be a finite number"),
    ("bad pool name", ["--url", "http://127.0.0.1:1", "--pool", "GPU_1"],
     "argument --pool: must be a pool name"),
    ("misspelt flag", ["--url", "http://127.0.0.1:1", "--max-concurency", "4"],
     "unknown flag --max-concurency (did you mean --max-concurrency?)"),
    ("--start-worker without a command", ["--url", "http://127.0.0.1:1", "--start-worker"],
     "--start-worker needs the worker's command after --"),
    ("a command without --start-worker", ["--url", "http://127.0.0.1:1", "--", "sleep", "1"],
     "pass --start-worker to have calibrate start it"),
]


@pytest.mark.parametrize(("label", "argv", "needle"), CALIBRATE_FLAGS,
                         ids=[row[0] for row in CALIBRATE_FLAGS])
def test_calibrate_flags(label: str, argv: list[str],
                         needle: str) -> None:
    got, out, err, seconds = run(["calibrate", *argv])
    assert (got, out, seconds < QUICK) == (2, "", True), err
    assert needle in err
    assert_one_line(err)


def test_calibrate_servers_that_cannot_be_measured(
        closed_port: int, silent_port: int,
        web_page: str) -> None:
    rows = [
        ("nothing listening", [f"http://127.0.0.1:{closed_port}"],
         f"cannot reach http://127.0.0.1:{closed_port}: Connection refused"),
        ("a server that never answers", [f"http://127.0.0.1:{silent_port}",
                                         "--request-timeout", "1"], "timed out"),
        ("a web page, not a worker", [web_page], f"{web_page}/tts does not synthesise: "
                                                 "HTTP 404"),
    ]
    for label, (url, *rest), needle in rows:
        got, out, err, seconds = run(["calibrate", "--url", url, *rest])
        assert (got, out, seconds < QUICK) == (1, "", True), (label, err)
        assert needle in err, label
        assert_one_line(err)


def test_calibrate_workers_that_do_not_start(closed_port: int, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    rows = [
        ("no such program", [str(tmp_path / "no-such-worker")],
         "cannot start '" + str(tmp_path / "no-such-worker") + "': No such file"),
        ("exits at once", [sys.executable, "-c", "import sys; print('bad flag'); "
                           "sys.exit(3)"],
         "the worker exited with code 3 before it was Ready: bad flag"),
        ("never Ready", [sys.executable, "-c", "import time; time.sleep(60)"],
         "the worker was not Ready within 1 s (--ready-timeout)"),
    ]
    for label, command, needle in rows:
        got, out, err, seconds = run(["calibrate", "--url", url, "--ready-timeout",
                                              "1", "--start-worker", "--", *command])
        assert (got, out, seconds < QUICK) == (1, "", True), (label, err)
        assert needle in err, label
        assert_one_line(err)


# --- status -------------------------------------------------------------------------------

STATUS_FLAGS = [
    ("bad namespace", ["-n", "Bad_NS"], "argument -n/--namespace: must be a namespace name"),
    ("bad name", ["UPPER"], "argument NAME: must be a Kubernetes object name"),
    ("name across namespaces", ["-A", "tts"], "a NAME needs one namespace: use -n, not -A"),
    ("unknown output", ["-o", "table"], "argument -o/--output: invalid choice: 'table'"),
    ("too many events", ["--events", "1000"], "argument --events: must be from 0 to 100"),
    ("endless timeout", ["--request-timeout", "inf"], "must be a finite number"),
    ("misspelt flag", ["--namspace", "x"], "unknown flag --namspace (did you mean "
                                            "--namespace or --all-namespaces?)"),
]


@pytest.mark.parametrize(("label", "argv", "needle"), STATUS_FLAGS,
                         ids=[row[0] for row in STATUS_FLAGS])
def test_status_flags(label: str, argv: list[str],
                      needle: str) -> None:
    got, out, err, seconds = run(["status", *argv])
    assert got in (1, 2) and out == "" and seconds < QUICK, err
    assert needle in err
    assert_one_line(err)


def test_status_kubeconfigs_and_servers_that_cannot_be_used(
        tmp_path: Path,
        closed_port: int, silent_port: int, web_page: str) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "deep.yaml").write_text("clusters: " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 16)
    (tmp_path / "entries.yaml").write_text("clusters: [1, 2]\n")
    rows = [
        ("no kubeconfig anywhere", [], {}, "no kubeconfig: pass --kubeconfig"),
        ("missing file", ["--kubeconfig", str(tmp_path / "nope")], {},
         f"--kubeconfig {tmp_path / 'nope'}: no such file"),
        ("$KUBECONFIG of missing files", [], {"KUBECONFIG": f"{tmp_path}/a:{tmp_path}/b"},
         "none of the files in $KUBECONFIG exists"),
        ("a list", ["--kubeconfig", str(tmp_path / "list.yaml")], {}, "not a kubeconfig"),
        ("5000-deep nesting", ["--kubeconfig", str(tmp_path / "deep.yaml")], {},
         "cannot read"),
        ("binary", ["--kubeconfig", str(tmp_path / "binary.yaml")], {}, "cannot read"),
        ("entries that are not mappings", ["--kubeconfig", str(tmp_path / "entries.yaml")], {},
         "every entry of clusters needs a name and a cluster"),
        ("no such context", ["--kubeconfig", kubeconfig(tmp_path, web_page), "--context",
                             "prod"], {}, "--context prod: no such context (the kubeconfig "
                                          "has here)"),
        ("nothing listening", ["--kubeconfig", kubeconfig(
            tmp_path, f"https://127.0.0.1:{closed_port}")], {},
         "cannot reach the API server"),
        ("a server that never answers", ["--request-timeout", "1", "--kubeconfig", kubeconfig(
            tmp_path, f"http://127.0.0.1:{silent_port}")], {}, "cannot reach the API server"),
        ("a web page, not an API server", ["--kubeconfig", kubeconfig(tmp_path, web_page)], {},
         "the API server's answer cannot be read"),
    ]
    for label, argv, env, needle in rows:
        got, out, err, seconds = run(["status", *argv], env={
            "KUBECONFIG": None, "HOME": str(tmp_path), **env})
        assert (got, out, seconds < QUICK) == (1, "", True), (label, err)
        assert needle in err, (label, err)
        assert_one_line(err)
