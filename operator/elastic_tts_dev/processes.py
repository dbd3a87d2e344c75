"""The processes tests and benchmarks start: a free loopback port for each, and the same
clean-then-forceful stop everywhere."""

from __future__ import annotations

import os
import signal
import socket
import subprocess


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
