"""Child processes that never outlive the process that started them.

Each child runs in a session of its own (a terminal's Ctrl-C reaches only the parent,
which then stops the children in order), logs to a file, and carries a parent-death
signal (``setpriv --pdeathsig KILL``, util-linux): if the parent dies without cleaning
up, even by SIGKILL, the kernel kills the child. The signal fires when the *thread*
that started the child exits, so start children from a thread that lives as long as
they should (the main thread, in tests and the command line).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


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
