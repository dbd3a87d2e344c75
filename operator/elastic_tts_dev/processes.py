"""The processes tests, benchmarks and the playground start.

A free loopback port for each (helpers run tests side by side: never a fixed one), and
the same clean-then-forceful stop everywhere.

`Child` is for long-lived programs (the local cluster's components, the operator): each
runs in a session of its own (a terminal's Ctrl-C reaches only the parent, which then
stops the children in order), logs to a file, and carries a parent-death signal
(``setpriv --pdeathsig KILL``, util-linux): if the parent dies without cleaning up, even
by SIGKILL, the kernel kills the child. The signal fires when the *thread* that started
the child exits, so start children from a thread that lives as long as they should (the
main thread, in tests and the command line).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def free_port() -> int:
    """A port nobody listens on now (helpers run tests side by side: never a fixed one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop_gracefully(process: subprocess.Popen[bytes] | subprocess.Popen[str],
                    grace: float) -> None:
    """SIGTERM, as Kubernetes sends it, then SIGKILL the process group if it has not
    exited within `grace` seconds (the group, so a gunicorn master's workers go too).
    Processes must have been started with start_new_session=True."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


class Child:
    """One started program: `stop()` sends SIGTERM, then SIGKILL to its whole group."""

    def __init__(self, name: str, args: Sequence[str], log: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.args = list(args)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        setpriv = shutil.which("setpriv")
        wrapper = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [*wrapper, *self.args], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=dict(env) if env is not None else None,
                cwd=cwd, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        if self.alive():
            self.process.send_signal(signum)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, wait up to `grace` s, then SIGKILL the process group; the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.poll()

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash, as far as the child can tell)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
