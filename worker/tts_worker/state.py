"""Per-process worker state: the engine's loading, admission, the drain and recycling."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from tts_worker.admission import Admission
from tts_worker.cache import AudioCache
from tts_worker.config import Settings
from tts_worker.engines import Engine, EngineError
from tts_worker.metrics import WorkerMetrics
from tts_worker.retries import RetryTracker

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

    def enter(self) -> Callable[[], None]:
        """Count one request in flight until the returned function is called (it may be
        called more than once: a streamed response ends, and is closed, later than its view
        returns). Counted before the request checks `draining`, so a drain that starts in
        between still waits for it."""
        with self._idle:
            self._active += 1
        left = threading.Event()

        def leave() -> None:
            with self._idle:
                if left.is_set():
                    return
                left.set()
                self._active -= 1
                self._idle.notify_all()

        return leave

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True


def resident_bytes() -> int | None:
    """This process's resident set size, from /proc (Linux); None elsewhere."""
    try:
        fields = Path("/proc/self/statm").read_text().split()
    except OSError:
        return None
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


class RecyclePolicy:
    """When this process should be replaced: after TTS_MAX_REQUESTS requests plus a random
    jitter of up to TTS_MAX_REQUESTS_JITTER (so that processes started together do not
    all go together), or once its RSS or CUDA memory passes its high-water mark.

    The replacement itself is the server's (tts_worker.server.recycle): the process asks
    once, through `request`, and keeps serving until it is told to stop."""

    def __init__(self, settings: Settings, engine: Engine,
                 rss: Callable[[], int | None] = resident_bytes) -> None:
        jitter = random.randint(0, settings.recycle_jitter) if settings.max_requests else 0
        self.limit = settings.max_requests + jitter if settings.max_requests else 0
        self._max_rss = settings.max_rss_mb * 2**20
        self._max_vram = settings.max_vram_mb * 2**20
        self._engine = engine
        self._rss = rss
        self._count = 0
        self._lock = threading.Lock()
        self.reason: str | None = None  # set once, when the process asked to be replaced
        self.request: Callable[[str], None] | None = None  # bound by the server

    def after_request(self) -> str | None:
        """Count one request; the reason to recycle if that is now due (reported once)."""
        with self._lock:
            self._count += 1
            if self.reason is not None:
                return None
            self.reason = self._due()
            reason = self.reason
        if reason is not None:
            log.info("process %d asks to be replaced: %s", os.getpid(), reason)
            if self.request is not None:
                self.request(reason)
        return reason

    def _due(self) -> str | None:
        if self.limit and self._count >= self.limit:
            return "max_requests"
        if self._max_rss:
            rss = self._rss()
            if rss is not None and rss > self._max_rss:
                return "rss"
        if self._max_vram:
            vram = self._engine.device_memory_bytes()
            if vram is not None and vram > self._max_vram:
                return "vram"
        return None


@dataclass
class WorkerState:
    settings: Settings
    engine: Engine
    metrics: WorkerMetrics
    cache: AudioCache
    admission: Admission
    drain: Drain
    retries: RetryTracker = field(default_factory=RetryTracker)

    def __post_init__(self) -> None:
        self.status = LOADING
        self.error: str | None = None
        self._loaded = threading.Event()
        self.recycle = RecyclePolicy(self.settings, self.engine)
        self.on_ready: list[Callable[[], None]] = []  # the server's hooks (recycling)

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
            for hook in self.on_ready:
                hook()

    def _fail(self, message: str) -> None:
        self.error = message
        self.status = FAILED
        log.error("engine %s failed to load: %s", self.engine.name, message)
        write_termination_message(self.settings.termination_log,
                                  f"engine {self.engine.name} failed to load: {message}")


def write_termination_message(path: str, message: str) -> None:
    """Kubernetes shows this file's content in the container's lastState once the container
    stops (terminationMessagePath; kubelet creates the file). Written only where it exists,
    so that a worker outside Kubernetes never creates /dev files."""
    target = Path(path)
    if not target.is_file():
        return
    try:
        target.write_text(message[:4000], encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the termination message to %s: %s", path, exc)


def current_state() -> WorkerState:
    state: WorkerState = current_app.extensions[EXTENSION]
    return state
