"""A micro-batcher: one thread owns a model and runs queued work in small batches.

Request threads submit text chunks and wait on futures. The batcher thread takes the
oldest chunk, waits up to `window` for more chunks with the same key (the voice) to arrive,
and hands up to `max_batch` of them to `run` at once. Because only this thread calls the
model, calls are serialised per model instance, which ModelScope pipelines require.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tts_worker.engines.base import EngineObserver

Item = TypeVar("Item")
Result = TypeVar("Result")

# `run` returns one entry per item: a result, or the exception for that item alone.
RunBatch = Callable[[Hashable, list[Item]], Sequence[Result | BaseException]]


@dataclass
class _Job(Generic[Item, Result]):
    key: Hashable
    item: Item
    future: Future[Result] = field(default_factory=Future)


class BatcherClosed(RuntimeError):
    """The batcher has shut down (the worker is draining); no new items are taken."""


class MicroBatcher(Generic[Item, Result]):
    def __init__(self, run: RunBatch[Item, Result], *, max_batch: int, window: float,
                 observer: EngineObserver, name: str = "tts-batcher") -> None:
        self._run = run
        self._max_batch = max(1, max_batch)
        self._window = max(0.0, window)
        self._observer = observer
        self._queue: deque[_Job[Item, Result]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def max_batch(self) -> int:
        return self._max_batch

    def submit(self, key: Hashable, items: Sequence[Item]) -> list[Future[Result]]:
        jobs: list[_Job[Item, Result]] = [_Job(key, item) for item in items]
        with self._cond:
            if self._closed:
                raise BatcherClosed("the engine is shutting down")
            self._queue.extend(jobs)
            self._observer.queue_changed(len(jobs))
            self._cond.notify()
        return [job.future for job in jobs]

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._execute(batch)

    def _next_batch(self) -> list[_Job[Item, Result]] | None:
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            key = self._queue[0].key
            if self._max_batch > 1 and self._window > 0:
                deadline = time.monotonic() + self._window
                while not self._closed and self._count(key) < self._max_batch:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            batch: list[_Job[Item, Result]] = []
            rest: deque[_Job[Item, Result]] = deque()
            while self._queue:
                job = self._queue.popleft()
                if job.key == key and len(batch) < self._max_batch:
                    batch.append(job)
                else:
                    rest.append(job)
            self._queue = rest
            self._observer.queue_changed(-len(batch))
        # A request that gave up (timed out) has cancelled its futures: skip that work.
        return [job for job in batch if job.future.set_running_or_notify_cancel()]

    def _count(self, key: Hashable) -> int:
        return sum(1 for job in self._queue if job.key == key)

    def _execute(self, batch: list[_Job[Item, Result]]) -> None:
        if not batch:
            return
        self._observer.batch(len(batch))
        try:
            results = self._run(batch[0].key, [job.item for job in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batch of {len(batch)} returned {len(results)} results")
        except Exception as exc:  # delivered to every waiting request
            for job in batch:
                job.future.set_exception(exc)
            return
        for job, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
