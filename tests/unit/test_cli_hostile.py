"""Hostile input to the commands a user types, one row per case: each ends in one line
naming the flag, field or file, with exit code 2 (bad input) or 1 (a server or process
that cannot be used), quickly; never a traceback, never a hang, JSON always valid.

The rows include every finding of issue 13's "Tracebacks and hangs" list that reaches
these commands; the spec file's own hostile rows are in test_spec.py."""

from __future__ import annotations

import http.server
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from elastic_tts.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "manifests" / "examples"
FULL = str(EXAMPLES / "full.yaml")
MINIMAL = str(EXAMPLES / "minimal.yaml")
QUICK = 10.0  # seconds: every row answers well within this, even on a loaded machine


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str, float]:
    started = time.monotonic()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err, time.monotonic() - started


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
        pass


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
def test_explain(capsys: pytest.CaptureFixture[str], label: str, argv: list[str], code: int,
                 needle: str) -> None:
    got, _, err, seconds = run(capsys, ["explain", *argv])
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


@pytest.mark.parametrize(("label", "pool_line", "needle"), HOSTILE_SPECS,
                         ids=[row[0] for row in HOSTILE_SPECS])
def test_explain_hostile_spec_files(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    label: str, pool_line: str | None, needle: str) -> None:
    path = tmp_path / "spec.yaml"
    if pool_line is None:
        path.write_bytes(bytes(range(256)) * 64)
    else:
        path.write_text("pools:\n  cpu:\n    accelerator: cpu\n    costPerHour: 0.1\n    "
                        + pool_line + "\n")
    got, _, err, seconds = run(capsys, ["explain", "--spec", str(path), "--load", "1"])
    assert (got, seconds < QUICK) == (2, True), err
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
def test_explain_extreme_input_gives_valid_json(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path, label: str,
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
    got, out, err, seconds = run(capsys, ["explain", "--spec", spec, "--load", load, *rest,
                                          "--json"])
    assert (got, err, seconds < QUICK) == (0, "", True)
    result = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert isinstance(result["cost_per_hour"], float | int)


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
def test_calibrate_flags(capsys: pytest.CaptureFixture[str], label: str, argv: list[str],
                         needle: str) -> None:
    got, out, err, seconds = run(capsys, ["calibrate", *argv])
    assert (got, out, seconds < QUICK) == (2, "", True), err
    assert needle in err
    assert_one_line(err)


def test_calibrate_servers_that_cannot_be_measured(
        capsys: pytest.CaptureFixture[str], closed_port: int, silent_port: int,
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
        got, out, err, seconds = run(capsys, ["calibrate", "--url", url, *rest])
        assert (got, out, seconds < QUICK) == (1, "", True), (label, err)
        assert needle in err, label
        assert_one_line(err)


def test_calibrate_workers_that_do_not_start(capsys: pytest.CaptureFixture[str],
                                             closed_port: int, tmp_path: Path) -> None:
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
        got, out, err, seconds = run(capsys, ["calibrate", "--url", url, "--ready-timeout",
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
def test_status_flags(capsys: pytest.CaptureFixture[str], label: str, argv: list[str],
                      needle: str) -> None:
    got, out, err, seconds = run(capsys, ["status", *argv])
    assert got in (1, 2) and out == "" and seconds < QUICK, err
    assert needle in err
    assert_one_line(err)


def test_status_kubeconfigs_and_servers_that_cannot_be_used(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        closed_port: int, silent_port: int, web_page: str) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
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
        with monkeypatch.context() as scoped:
            for key, value in env.items():
                scoped.setenv(key, value)
            got, out, err, seconds = run(capsys, ["status", *argv])
        assert (got, out, seconds < QUICK) == (1, "", True), (label, err)
        assert needle in err, (label, err)
        assert_one_line(err)
