"""Engines for tests, registered at the worker's own seam (the engine registry).

`create_app()` here is also a gunicorn target: `GUNICORN_APP` runs the real worker with
these engines in every gunicorn process. In a subprocess they are tuned
by environment variables (TTS_FAKE_DELAY seconds per request, TTS_FAKE_LOAD_SECONDS to
load).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask

import tts_worker
from tts_worker.audio import Audio
from tts_worker.engines import (
    Catalog,
    Engine,
    EngineError,
    EngineObserver,
    EngineSettings,
    SynthesisRequest,
    register_engine,
)

# The gunicorn app of the real worker with these engines (tests and `bench/`).
GUNICORN_APP = "elastic_tts_dev.fake_engines:create_app()"
SAMPLE_RATE = 16000
SAMPLES_PER_CHAR = 160  # 10 ms of audio per character


class SilenceEngine(Engine):
    """Instant, silent audio: 10 ms per character. Optionally slow, gated, broken."""

    name = "test-silence"

    def __init__(self, delay: float = 0.0, load_seconds: float = 0.0) -> None:
        self._delay = delay
        self._load_seconds = load_seconds
        self.gate: threading.Event | None = None  # when set, synthesize waits for it
        self.entered = threading.Semaphore(0)  # released as each synthesis starts
        self.calls: list[SynthesisRequest] = []

    @property
    def catalog(self) -> Catalog:
        return Catalog(voices=("alto", "bass"), emotions=("neutral", "happy"),
                       default_voice="alto", default_emotion="neutral")

    @property
    def device(self) -> str:
        return "cpu"

    def load(self) -> None:
        time.sleep(self._load_seconds)

    def synthesize(self, request: SynthesisRequest) -> Audio:
        self.calls.append(request)
        self.entered.release()
        if self.gate is not None and not self.gate.wait(30):
            raise EngineError("test gate never opened")
        if self._delay:
            time.sleep(self._delay)
        return Audio(b"\x00\x00" * SAMPLES_PER_CHAR * len(request.text), SAMPLE_RATE)


class BrokenEngine(SilenceEngine):
    name = "test-broken"

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self._error = error

    def synthesize(self, request: SynthesisRequest) -> Audio:
        raise self._error


class UnloadableEngine(SilenceEngine):
    name = "test-unloadable"

    def __init__(self) -> None:
        super().__init__()
        self.load_gate = threading.Event()
        self.fail = True

    def load(self) -> None:
        self.load_gate.wait(30)
        if self.fail:
            raise EngineError("the model is corrupt")


# The instances the latest app was built with, for tests that drive them.
LAST: dict[str, Any] = {}


def _keep(engine: SilenceEngine) -> SilenceEngine:
    LAST[engine.name] = engine
    return engine


@register_engine("test-silence")
def _silence(settings: EngineSettings, observer: EngineObserver) -> Engine:
    return _keep(SilenceEngine(float(os.environ.get("TTS_FAKE_DELAY", "0")),
                               float(os.environ.get("TTS_FAKE_LOAD_SECONDS", "0"))))


@register_engine("test-broken")
def _broken(settings: EngineSettings, observer: EngineObserver) -> Engine:
    return _keep(BrokenEngine(EngineError("the GPU fell off the bus")))


@register_engine("test-buggy")
def _buggy(settings: EngineSettings, observer: EngineObserver) -> Engine:
    return _keep(BrokenEngine(ZeroDivisionError("division by zero")))


@register_engine("test-unloadable")
def _unloadable(settings: EngineSettings, observer: EngineObserver) -> Engine:
    return _keep(UnloadableEngine())


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    return tts_worker.create_app(config)
