"""gunicorn configuration: `gunicorn -c python:tts_worker.gunicorn_conf 'tts_worker:create_app()'`.

Read from the same TTS_* settings as the app. Beyond the server knobs it wires in what the
worker depends on:
- Prometheus multiprocess mode: PROMETHEUS_MULTIPROC_DIR is set (before any process imports
  prometheus_client) and wiped when the master starts; a worker's live gauges are dropped
  when it exits (child_exit);
- two listeners, the API (TTS_BIND) and the probes (TTS_PROBE_BIND), both bound by the
  master; each worker serves the probe one on its own event loop (tts_worker.server.probes);
- the worker class, gthread whose poller reads the request headers (tts_worker.server.worker);
- the SIGTERM drain and recycling in every worker (post_worker_init, tts_worker.drain and
  tts_worker.server.lifecycle), and recycling's coordinator in the master (when_ready);
- `Connection: close` when the app asks for it (pre_request, tts_worker.server_hints).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tts_worker import server_hints
from tts_worker.config import load_settings
from tts_worker.server.recycle import RecycleCoordinator, RuntimeDir

_settings = load_settings()
# Set before prometheus_client is imported anywhere: it picks its value store on import.
_multiproc_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "tts-worker-prometheus"))
# Recycling's marker files: one directory per master, inherited by its workers.
if not os.environ.get("TTS_RUNTIME_DIR"):
    os.environ["TTS_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="tts-worker-runtime-")
_runtime = RuntimeDir(os.environ["TTS_RUNTIME_DIR"])
_coordinator: RecycleCoordinator | None = None

bind = [_settings.bind, _settings.probe_bind]
workers = _settings.workers
worker_class = "tts_worker.server.worker.TtsThreadWorker"
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
    _wipe(_runtime.path)


def when_ready(server: Any) -> None:
    global _coordinator
    _coordinator = RecycleCoordinator(server, _runtime, _settings.recycle_timeout)
    _coordinator.start()


def post_worker_init(worker: Any) -> None:
    from tts_worker.server.lifecycle import attach

    attach(worker, _settings.probe_bind, _runtime)


def pre_request(worker: Any, req: Any) -> None:
    server_hints.bind(req)


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    server_hints.unbind()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _multiproc_dir)  # type: ignore[no-untyped-call]
    _runtime.forget(worker.pid)


def on_exit(server: Any) -> None:
    if _coordinator is not None:
        _coordinator.stop()
    shutil.rmtree(_runtime.path, ignore_errors=True)


def _wipe(path: Path) -> None:
    # Files left by an earlier run would be summed into this one's counters. The directory
    # itself stays: it is often a mounted emptyDir.
    if path.resolve() == Path("/"):
        raise SystemExit(f"refusing to wipe {path}: it is /")
    path.mkdir(parents=True, exist_ok=True)
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
