"""Per-process worker state: the engine's loading, the concurrency limit and the drain."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from flask import current_app

from tts_worker.cache import AudioCache
from tts_worker.config import Settings
from tts_worker.engines import Engine, EngineError
from tts_worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)

LOADING, READY, FAILED = "loading", "ready", "failed"
EXTENSION = "tts_worker"


class Drain:
    """SIGTERM's effect: not ready at once, no new work, and a wait for the work in flight."""

    def __init__(self) -> None:
        self._draining = threading.Event()
        self._active = 0
        self._idle = threading.Condition()

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    @property
    def active(self) -> int:
        return self._active

    def begin(self) -> None:
        self._draining.set()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        # Counted before the request checks `draining`, so a drain that starts in between
        # still waits for it.
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True


class Limiter:
    """At most `limit` syntheses at once in this process; the rest are refused, not queued."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    def try_acquire(self) -> bool:
        return self._slots.acquire(blocking=False)

    def release(self) -> None:
        self._slots.release()


@dataclass
class WorkerState:
    settings: Settings
    engine: Engine
    metrics: WorkerMetrics
    cache: AudioCache
    limiter: Limiter
    drain: Drain

    def __post_init__(self) -> None:
        self.status = LOADING
        self.error: str | None = None
        self._loaded = threading.Event()

    def unavailable(self) -> tuple[str, str] | None:
        """Why this process cannot serve now, as (error code, message); None if it can."""
        if self.drain.draining:
            return "draining", "this worker is shutting down; retry on another"
        if self.status == FAILED:
            return "engine_failed", f"the engine failed to load: {self.error}"
        if self.status != READY:
            return "engine_loading", "the engine is still loading"
        return None

    def start_loading(self) -> None:
        """Load the engine in the background; /readyz says when it is done.

        Loading a model and warming it up can take longer than gunicorn lets a worker boot
        without a heartbeat, so it must not block the factory.
        """
        threading.Thread(target=self._load, name="tts-engine-load", daemon=True).start()

    def wait_loaded(self, timeout: float) -> bool:
        return self._loaded.wait(timeout)

    def _load(self) -> None:
        started = time.monotonic()
        try:
            self.engine.load()
        except EngineError as exc:
            self._fail(str(exc))
        except Exception as exc:  # a failed load is a state, not a crash
            log.exception("engine %s failed to load", self.engine.name)
            self._fail(f"{type(exc).__name__}: {exc}")
        else:
            self.metrics.engine_ready(self.engine.name, self.engine.device)
            self.status = READY
            log.info("engine %s ready on %s in %.1f s", self.engine.name, self.engine.device,
                     time.monotonic() - started)
        finally:
            self._loaded.set()

    def _fail(self, message: str) -> None:
        self.error = message
        self.status = FAILED
        log.error("engine %s failed to load: %s", self.engine.name, message)


def current_state() -> WorkerState:
    state: WorkerState = current_app.extensions[EXTENSION]
    return state
