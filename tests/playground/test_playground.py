"""`make playground`, bounded: it starts (cluster, chart, operator, Prometheus, the day's
load), a TTSService scales on the real cluster, the spot shortage it announces really
leaves spot pods Pending, and SIGINT or SIGTERM stops every process it started.

The README's quick start is read from README.md (`tests/readme.py`) and followed:
- ``make demo``: not run here. It is `elastic-tts simulate` on the built-in day (checked:
  `make -n demo` says so), which tests/simulator runs whole as a `slow` test and in part
  in every run.
- ``make playground``: what `make -n playground` runs, `python -m
  elastic_tts_dev.playground --out out/playground`, is run here with ``--start 7.4`` (the
  spot shortage comes in seconds, not minutes) and from a temporary folder, which stands
  for the checkout: its ``out/playground`` is the one the README's next commands name.
- "In another terminal": the README's commands are run as written through bash from that
  folder: the ``export`` line first, then ``kubectl get tts -w`` until it has shown the
  example (a watch never ends by itself) and ``kubectl describe tts tts-full``.
Any other command fails the test: teach it the new step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from elastic_tts_dev.binaries import BuildError, find
from tests import readme
from tests.operator.cluster import wait_for

ROOT = Path(__file__).resolve().parents[2]


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Run:
    """The playground as a child process in its own session, its output collected."""

    def __init__(self, out: Path, *args: str, sigint_ignored: bool = False) -> None:
        """`sigint_ignored`: start it as a shell starts a background job (`cmd &`),
        with SIGINT ignored."""
        self.out = out
        self.log = out.parent / f"{out.name}.log"
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "elastic_tts_dev.playground", "--out", str(out),
                 *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
                preexec_fn=ignore_sigint if sigint_ignored else None)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def said(self, text: str) -> bool:
        if self.process.poll() is not None and text not in self.output():
            raise AssertionError(f"the playground exited with {self.process.returncode}:\n"
                                 f"{self.output()[-3000:]}")
        return text in self.output()

    def kubectl(self, *args: str) -> Any:
        done = subprocess.run([str(self.out / "bin" / "kubectl"), *args, "-o", "json"],
                              env={**os.environ, "KUBECONFIG": str(self.out / "kubeconfig")},
                              capture_output=True, text=True, timeout=60, check=True)
        return json.loads(done.stdout)

    def pids(self) -> list[int]:
        return [int(p) for p in (self.out / "pids").read_text().split()]

    def stop(self, signum: int, timeout: float = 90) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout)


def processes_mentioning(text: str) -> list[str]:
    """Processes whose command line or environment names `text` (the out folder is in
    every component's arguments or KUBECONFIG)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline or text.encode() in environ:
            command = cmdline.replace(b"\0", b" ")[:160].decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def binaries_built() -> None:
    try:
        find()
    except BuildError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:  # a failed test still leaves nothing behind
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGKILL)
            run.process.wait(30)


def assert_nothing_left(run: Run, pids: list[int]) -> None:
    left = [pid for pid in pids if alive(pid)]
    assert not left, left
    deadline = time.monotonic() + 10  # pdeathsig'd grandchildren are reaped by init
    while processes_mentioning(str(run.out)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not processes_mentioning(str(run.out)), processes_mentioning(str(run.out))


def make_dry_run(target: str) -> str:
    """What `make TARGET` would run (prerequisites that are current print nothing)."""
    return subprocess.run(["make", "-s", "-n", target], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True).stdout


def unknown(command: readme.Command) -> str:
    return (f"{command}\n  is not a step this test knows: the README changed; teach "
            "tests/playground/test_playground.py the new step")


def quick_start_commands() -> list[str]:
    """The quick start's first block: what `make demo` and `make playground` run."""
    expected = {("make", "demo"): "elastic-tts simulate",
                ("make", "playground"): "-m elastic_tts_dev.playground --out out/playground"}
    seen = []
    for command in readme.commands("try"):
        assert command.argv in expected, unknown(command)
        assert expected[command.argv] in make_dry_run(command.argv[1]), command
        seen.append(command.argv[1])
    return seen


def follow_the_readme_in_another_terminal(checkout: Path) -> None:
    """The README's commands for the running playground, run as written from
    `checkout`, whose out/playground is the playground's."""
    export, *rest = readme.commands("playground")
    assert export.argv[0] == "export", unknown(export)
    variables = dict(arg.split("=", 1) for arg in export.argv[1:])
    assert variables["KUBECONFIG"] == "$PWD/out/playground/kubeconfig", export
    assert variables["PATH"].startswith("$PWD/out/playground/bin:"), export
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    for command in rest:
        script = f"{export.text}\n{command.text}\n"
        if command.argv == ("kubectl", "get", "tts", "-w"):
            with subprocess.Popen(["bash", "-c", script], cwd=checkout, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  start_new_session=True) as watch:
                assert watch.stdout is not None
                lines = [watch.stdout.readline() for _ in range(2)]  # header, tts-full
                os.killpg(watch.pid, signal.SIGTERM)
            assert lines[0].split()[:2] == ["NAME", "MODE"], lines
            assert lines[1].startswith("tts-full "), lines
        elif command.argv == ("kubectl", "describe", "tts", "tts-full"):
            done = subprocess.run(["bash", "-c", script], cwd=checkout, env=env, text=True,
                                  capture_output=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert "SpotFallback" in done.stdout and "Events:" in done.stdout, done.stdout
        else:
            pytest.fail(unknown(command))


@pytest.mark.timeout(420)
def test_playground_scales_shows_a_spot_shortage_and_stops_on_sigint(
        binaries_built: None, runs: list[Run], tmp_path: Path) -> None:
    assert quick_start_commands() == ["demo", "playground"]
    # Just before the day's 07:30 shortage, at 60x: it comes 6 s after the replay starts.
    run = Run(tmp_path / "out" / "playground", "--start", "7.4")
    runs.append(run)
    wait_for("the playground ready", lambda: run.said("Ctrl-C stops everything."), 300, 1)
    for line in ("kubectl get tts -w", "KUBECONFIG=", "spot shortage",
                 "spot interruption"):
        assert run.said(line), line
    assert (run.out / "bin" / "kubectl").exists() and (run.out / "bin" / "helm").exists()
    follow_the_readme_in_another_terminal(tmp_path)

    def scaled() -> dict[str, Any] | None:
        tts = run.kubectl("get", "tts", "tts-full", "-n", "default")
        replicas = (tts.get("status") or {}).get("replicas") or {}
        return tts if sum(replicas.values()) > 1 else None

    scaled_tts = wait_for("tts-full scaled past its cpu floor", scaled, 120, 1)
    deployments = {d["metadata"]["name"]: d["spec"]["replicas"]
                   for d in run.kubectl("get", "deployments", "-n", "default")["items"]}
    decided = scaled_tts["status"]["lastDecision"]["replicas"]
    assert sum(deployments.values()) > 1, deployments
    assert set(deployments) == {f"tts-full-{pool}" for pool in decided}

    wait_for("the shortage announced", lambda: run.said("] spot shortage"), 60, 1)

    def spot_pending() -> list[Any]:
        pods = run.kubectl("get", "pods", "-n", "default", "-l",
                           "elastictts.io/pool=gpu-spot")["items"]
        return [p for p in pods if any(
            c.get("reason") == "Unschedulable" and "nvidia.com/gpu" in c.get("message", "")
            for c in p["status"].get("conditions") or [])]

    wait_for("a spot pod Pending for want of a GPU", spot_pending, 120, 1)
    pids = run.pids()
    assert len(pids) >= 7, pids  # etcd, apiserver, controllers, scheduler, kwok, prom, operator
    assert run.stop(signal.SIGINT) == 0, run.output()[-3000:]
    assert "stopping" in run.output()
    assert_nothing_left(run, pids)
    assert not (run.out / "cluster").exists()


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("signum", "sigint_ignored"), [
    (signal.SIGTERM, False),
    # Started as a background job (`make playground &`), which inherits SIGINT ignored:
    # the promise to stop on SIGINT still holds.
    (signal.SIGINT, True),
], ids=["sigterm", "sigint-as-background-job"])
def test_a_signal_while_starting_leaves_no_process(binaries_built: None, runs: list[Run],
                                                   tmp_path: Path, signum: int,
                                                   sigint_ignored: bool) -> None:
    run = Run(tmp_path / "playground", sigint_ignored=sigint_ignored)
    runs.append(run)
    wait_for("the cluster up", lambda: run.said("cluster up in"), 240, 0.5)
    pids = run.pids()
    assert len(pids) >= 5, pids
    assert run.stop(signum) == 0, run.output()[-3000:]
    assert_nothing_left(run, pids)
