"""Process recycling, make before break: a replacement is ready before the old process stops.

gunicorn's own `max_requests` stops a worker first and starts its successor after: with one
process per pod, requests then wait for a whole model load, and probes go unanswered. Here:

1. a worker process decides it is due (tts_worker.state.RecyclePolicy) and writes
   `recycle-<pid>` into the runtime directory (TTS_RUNTIME_DIR, one per gunicorn master);
2. the coordinator, a thread in the master, adds one worker (as gunicorn's own control
   socket does: num_workers + 1, wake the arbiter); both processes accept on the shared
   listeners meanwhile;
3. the new process loads its engine and writes `ready-<pid>` (`ready` or `failed`); until it
   is ready it does not answer probes, so the pod stays Ready on the old one;
4. ready: the coordinator writes `retire-<old>`, makes the old process the oldest and takes
   the count back down, so gunicorn sends exactly that process SIGTERM. It stops accepting
   at once (no 503 drain: the new process serves), finishes everything in flight, and
   exits. Failed or late (TTS_RECYCLE_TIMEOUT): the new process is the one retired, and the
   old one is tried again after RETRY_AFTER seconds.

One recycle at a time, so a pod never holds more than one extra copy of the model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RECYCLE, READY, RETIRE = "recycle", "ready", "retire"
SPAWN_TIMEOUT = 30.0  # seconds for gunicorn to fork the new process
RETRY_AFTER = 60.0  # seconds before a failed recycle is tried again


class RuntimeDir:
    """Marker files `<kind>-<pid>` shared by the master and its workers."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def mark(self, kind: str, pid: int, text: str = "") -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / f"{kind}-{pid}"
        scratch = self.path / f".{kind}-{pid}.tmp"
        scratch.write_text(text, encoding="utf-8")
        scratch.replace(target)  # readers never see a half-written marker

    def read(self, kind: str, pid: int) -> str | None:
        try:
            return (self.path / f"{kind}-{pid}").read_text(encoding="utf-8")
        except OSError:
            return None

    def has(self, kind: str, pid: int) -> bool:
        return (self.path / f"{kind}-{pid}").exists()

    def pids(self, kind: str) -> list[int]:
        if not self.path.is_dir():
            return []
        found = []
        for entry in self.path.glob(f"{kind}-*"):
            suffix = entry.name.removeprefix(f"{kind}-")
            if suffix.isdigit():
                found.append(int(suffix))
        return sorted(found)

    def forget(self, pid: int) -> None:
        for kind in (RECYCLE, READY, RETIRE):
            with contextlib.suppress(OSError):
                (self.path / f"{kind}-{pid}").unlink()


def recycle_under_way(runtime: RuntimeDir, me: int) -> bool:
    """Whether another process asked to be replaced: then this one is its replacement."""
    return any(pid != me for pid in runtime.pids(RECYCLE))


class RecycleCoordinator:
    """Runs in the gunicorn master (started from its `when_ready` hook)."""

    def __init__(self, arbiter: Any, runtime: RuntimeDir, ready_timeout: float,
                 poll: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self._arbiter = arbiter
        self._runtime = runtime
        self._ready_timeout = ready_timeout
        self._poll = poll
        self._clock = clock
        self._not_before: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tts-recycle", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.step()
            except Exception:  # the coordinator must outlive any one odd state
                log.exception("recycling failed; trying again")

    def step(self) -> None:
        for pid in self._runtime.pids(RECYCLE):
            if pid not in self._arbiter.WORKERS:
                self._runtime.forget(pid)
                continue
            if self._runtime.has(RETIRE, pid):
                continue  # replaced already, and on its way out
            if self._clock() < self._not_before.get(pid, 0.0):
                continue
            self._replace(pid)
            return

    def _replace(self, old: int) -> None:
        reason = self._runtime.read(RECYCLE, old) or "?"
        before = set(self._arbiter.WORKERS)
        log.info("recycling worker %d (%s): starting its replacement", old, reason)
        self._arbiter.num_workers += 1
        self._arbiter.wakeup()
        new = self._wait(lambda: next(iter(set(self._arbiter.WORKERS) - before), None),
                         SPAWN_TIMEOUT)
        if new is None:
            log.warning("recycling worker %d: no replacement was started", old)
            self._arbiter.num_workers -= 1
            self._not_before[old] = self._clock() + RETRY_AFTER
            return
        answer = self._wait(lambda: self._runtime.read(READY, new)
                            or (None if new in self._arbiter.WORKERS else "exited"),
                            self._ready_timeout)
        if answer == "ready":
            log.info("recycling worker %d: %d is ready; retiring %d", old, new, old)
            self._runtime.mark(RETIRE, old)
            self._retire(old)
            return
        log.warning("recycling worker %d: replacement %d %s; keeping %d, trying again in "
                    "%.0f s", old, new, answer or "was not ready in time", old, RETRY_AFTER)
        # The replacement, or whatever gunicorn started in its place if it died.
        newcomers = [pid for pid in self._arbiter.WORKERS if pid not in before]
        newest = max(newcomers, key=lambda pid: self._arbiter.WORKERS[pid].age, default=new)
        self._runtime.mark(RETIRE, newest)
        self._retire(newest)
        self._not_before[old] = self._clock() + RETRY_AFTER

    def _retire(self, pid: int) -> None:
        # gunicorn stops the oldest workers when there are more than num_workers: make this
        # one the oldest, then take the count down, and it alone gets SIGTERM.
        workers = self._arbiter.WORKERS
        target = workers.get(pid)
        if target is not None:
            target.age = min(w.age for w in workers.values()) - 1
        self._arbiter.num_workers -= 1
        self._arbiter.wakeup()

    def _wait(self, probe: Callable[[], Any], timeout: float) -> Any:
        deadline = self._clock() + timeout
        while not self._stop.is_set():
            found = probe()
            if found is not None:
                return found
            if self._clock() >= deadline:
                return None
            time.sleep(self._poll)
        return None


def runtime_dir_from_env() -> RuntimeDir:
    return RuntimeDir(os.environ["TTS_RUNTIME_DIR"])
