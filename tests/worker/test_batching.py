"""The micro-batcher: serialised calls, batches by key, per-item failures, cancellation."""

from __future__ import annotations

import threading
from collections.abc import Hashable

import pytest

from tts_worker.engines.batching import BatcherClosed, MicroBatcher


class Recorder:
    def __init__(self) -> None:
        self.batches: list[tuple[Hashable, list[str]]] = []
        self.active = 0
        self.most_active = 0
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.queue = 0
        self.sizes: list[int] = []

    def run(self, key: Hashable, items: list[str]) -> list[str | BaseException]:
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        self.entered.set()
        self.gate.wait(10)
        self.batches.append((key, list(items)))
        with self.lock:
            self.active -= 1
        return [ValueError(item) if item == "bad" else item.upper() for item in items]

    # The observer.
    def queue_changed(self, delta: int) -> None:
        with self.lock:
            self.queue += delta

    def oom(self) -> None:
        pass

    def batch(self, size: int) -> None:
        self.sizes.append(size)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def test_items_submitted_together_run_as_one_batch(recorder: Recorder) -> None:
    batcher = MicroBatcher(recorder.run, max_batch=4, window=0.05, observer=recorder)
    futures = batcher.submit("v", ["a", "b", "c"])
    assert [f.result(5) for f in futures] == ["A", "B", "C"]
    assert recorder.batches == [("v", ["a", "b", "c"])]
    assert recorder.sizes == [3] and recorder.queue == 0
    batcher.close()


def test_batches_hold_one_key_and_at_most_max_batch(recorder: Recorder) -> None:
    recorder.gate.clear()
    batcher = MicroBatcher(recorder.run, max_batch=2, window=0.0, observer=recorder)
    blocker = batcher.submit("v", ["first"])
    assert recorder.entered.wait(5)  # the batcher is inside run(), so the rest queue up
    rest = batcher.submit("v", ["a", "b", "c"]) + batcher.submit("w", ["x"])
    assert recorder.queue == 4
    recorder.gate.set()
    assert [f.result(5) for f in blocker + rest] == ["FIRST", "A", "B", "C", "X"]
    assert recorder.batches == [("v", ["first"]), ("v", ["a", "b"]), ("v", ["c"]),
                                ("w", ["x"])]
    assert recorder.most_active == 1  # never two calls at once
    batcher.close()


def test_a_failing_item_fails_only_its_own_future(recorder: Recorder) -> None:
    batcher = MicroBatcher(recorder.run, max_batch=4, window=0.0, observer=recorder)
    good, bad = batcher.submit("v", ["ok", "bad"])
    assert good.result(5) == "OK"
    with pytest.raises(ValueError, match="bad"):
        bad.result(5)
    batcher.close()


def test_an_exception_from_run_reaches_every_item() -> None:
    def explode(key: Hashable, items: list[str]) -> list[str]:
        raise RuntimeError("device lost")

    recorder = Recorder()
    batcher = MicroBatcher(explode, max_batch=4, window=0.0, observer=recorder)
    futures = batcher.submit("v", ["a", "b"])
    for future in futures:
        with pytest.raises(RuntimeError, match="device lost"):
            future.result(5)
    batcher.close()


def test_cancelled_work_is_skipped(recorder: Recorder) -> None:
    recorder.gate.clear()
    batcher = MicroBatcher(recorder.run, max_batch=1, window=0.0, observer=recorder)
    blocker = batcher.submit("v", ["first"])
    assert recorder.entered.wait(5)
    (abandoned,) = batcher.submit("v", ["late"])
    assert abandoned.cancel()
    recorder.gate.set()
    assert blocker[0].result(5) == "FIRST"
    batcher.close()
    assert recorder.batches == [("v", ["first"])]


def test_a_closed_batcher_refuses_work(recorder: Recorder) -> None:
    batcher = MicroBatcher(recorder.run, max_batch=1, window=0.0, observer=recorder)
    batcher.close()
    with pytest.raises(BatcherClosed):
        batcher.submit("v", ["a"])
