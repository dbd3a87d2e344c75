"""SIGTERM in a gunicorn worker: drain first, then let gunicorn stop gracefully.

gunicorn's own SIGTERM handling stops accepting at once, so callers routed here in the
moments after a spot interruption would see refused connections. Instead, on SIGTERM:
1. /readyz and new synthesis requests answer 503 at once (the app's Drain);
2. the worker keeps accepting, and waits until no request is in flight (at most
   TTS_DRAIN_TIMEOUT), then TTS_DRAIN_LINGER more seconds of 503s;
3. it hands over to gunicorn's graceful exit, which finishes open connections; the master
   exits 0 once its workers have.

A process retired by recycling (tts_worker.server.recycle) gets SIGTERM too, but its
replacement is already serving: it stops answering probes and hands over to gunicorn's
graceful exit at once, which stops accepting and finishes what is in flight.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from tts_worker.state import WorkerState

log = logging.getLogger(__name__)


def install_sigterm_drain(worker: Any, state: WorkerState, *, retiring: Callable[[], bool],
                          stop_probes: Callable[[], None]) -> None:
    """Called from gunicorn's post_worker_init, once `worker.wsgi` is the Flask app."""
    started = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if started.is_set():
            return
        started.set()
        if retiring():
            threading.Thread(target=_retire, name="tts-retire", daemon=True).start()
            return
        state.drain.begin()
        threading.Thread(target=_finish, name="tts-drain", daemon=True).start()

    def _retire() -> None:
        log.info("recycling: worker %s hands over to its replacement", worker.pid)
        stop_probes()
        worker.handle_exit(signal.SIGTERM, None)

    def _finish() -> None:
        settings = state.settings
        begun = time.monotonic()
        if not state.drain.wait_idle(settings.drain_timeout):
            log.warning("drain: %d request(s) still in flight after %.0f s; stopping anyway",
                        state.drain.active, settings.drain_timeout)
        time.sleep(settings.drain_linger)
        log.info("drain: done in %.1f s; stopping worker %s", time.monotonic() - begun,
                 worker.pid)
        worker.handle_exit(signal.SIGTERM, None)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.siginterrupt(signal.SIGTERM, False)
