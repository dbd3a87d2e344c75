"""A gunicorn worker process's life around the app: its probe listener, its part in
recycling, and its SIGTERM drain. Wired in by tts_worker.gunicorn_conf."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from tts_worker.drain import install_sigterm_drain
from tts_worker.ops import probe_router
from tts_worker.server.probes import ProbeServer
from tts_worker.server.recycle import READY, RECYCLE, RETIRE, RuntimeDir, recycle_under_way
from tts_worker.state import EXTENSION
from tts_worker.state import READY as ENGINE_READY


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def take_listener(worker: Any, address: str) -> Any:
    """Remove the listener bound to `address` from those gunicorn's loop serves."""
    port = port_of(address)
    for listener in list(worker.sockets):
        if listener.getsockname()[1] == port:
            worker.sockets.remove(listener)
            if listener in getattr(worker, "wait_fds", []):
                worker.wait_fds.remove(listener)
            return listener
    return None


def _once(action: Callable[[], None]) -> Callable[[], None]:
    done = threading.Event()
    lock = threading.Lock()

    def run() -> None:
        with lock:
            if done.is_set():
                return
            done.set()
        action()

    return run


def attach(worker: Any, probe_bind: str, runtime: RuntimeDir) -> None:
    """Called from post_worker_init, before gunicorn's loop starts accepting."""
    extensions = getattr(worker.wsgi, "extensions", None)
    state = extensions.get(EXTENSION) if extensions else None
    listener = take_listener(worker, probe_bind)
    if state is None:
        return  # not the tts app (a test's); its listener stays unserved
    pid = os.getpid()
    probes = ProbeServer(listener.sock, probe_router(state)) if listener is not None else None
    start_probes = _once(probes.start if probes is not None else lambda: None)
    # A replacement answers probes only once it can serve, so the pod stays Ready on the
    # process it replaces; the first processes answer at once (loading is 503 on /readyz).
    replacement = recycle_under_way(runtime, pid)
    if replacement:
        # Nor API connections: the old process takes them until this one can serve.
        getattr(worker, "hold_accepting", lambda: None)()
    else:
        start_probes()

    @_once
    def loaded() -> None:
        ok = state.status == ENGINE_READY
        runtime.mark(READY, pid, "ready" if ok else "failed")
        if ok:
            getattr(worker, "allow_accepting", lambda: None)()
            start_probes()

    state.on_ready.append(loaded)
    if state.wait_loaded(0):
        loaded()

    def request_recycle(reason: str) -> None:
        state.metrics.recycled(reason)
        runtime.mark(RECYCLE, pid, reason)

    state.recycle.request = request_recycle
    install_sigterm_drain(worker, state, retiring=lambda: runtime.has(RETIRE, pid),
                          stop_probes=probes.stop if probes is not None else lambda: None)
