"""Stopping the processes tests start: the same clean-then-forceful way everywhere."""

from __future__ import annotations

import os
import signal
import subprocess


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
