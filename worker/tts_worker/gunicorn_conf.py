"""gunicorn configuration: `gunicorn -c python:tts_worker.gunicorn_conf 'tts_worker:create_app()'`.

Read from the same TTS_* settings as the app. Beyond the server knobs it does three
things the worker depends on:
- Prometheus multiprocess mode: PROMETHEUS_MULTIPROC_DIR is set (before any process imports
  prometheus_client) and wiped when the master starts; a worker's live gauges are dropped
  when it exits (child_exit);
- the SIGTERM drain in every worker (post_worker_init, see tts_worker.drain);
- gthread workers with more threads than the concurrency limit, so that a busy worker
  still answers probes, scrapes and 429s.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tts_worker.config import load_settings

_settings = load_settings()
# Set before prometheus_client is imported anywhere: it picks its value store on import.
_multiproc_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "tts-worker-prometheus"))

bind = [_settings.bind]
workers = _settings.workers
worker_class = "gthread"
threads = _settings.server_threads
# The heartbeat comes from gthread's main loop, not from request threads, so long
# syntheses do not trip it; a hung worker still gets replaced.
timeout = 120
graceful_timeout = _settings.graceful_timeout
keepalive = 5
# The heartbeat file on tmpfs: a disk-backed /tmp can stall it under I/O pressure.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# The runtime control socket is not used, and a read-only root filesystem has no place for it.
control_socket_disable = True
proc_name = "elastic-tts-worker"


def on_starting(server: Any) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    _wipe(Path(_multiproc_dir))


def post_worker_init(worker: Any) -> None:
    from tts_worker.drain import install_sigterm_drain

    install_sigterm_drain(worker)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _multiproc_dir)  # type: ignore[no-untyped-call]


def _wipe(path: Path) -> None:
    # Files left by an earlier run would be summed into this one's counters. The directory
    # itself stays: it is often a mounted emptyDir.
    if path.resolve() == Path("/"):
        raise SystemExit("PROMETHEUS_MULTIPROC_DIR must not be /")
    path.mkdir(parents=True, exist_ok=True)
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
