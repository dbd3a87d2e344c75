"""Fixtures for the worker: fresh apps per test, built through the real factory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from elastic_tts_dev import fake_engines as fakes
from tts_worker.state import EXTENSION, WorkerState

AppFactory = Callable[..., Flask]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings come from TTS_* variables; the caller's shell must not leak into a test.
    for name in list(os.environ):
        if name.startswith("TTS_") or name.lower() == "prometheus_multiproc_dir":
            monkeypatch.delenv(name)


@pytest.fixture
def make_app() -> Iterator[AppFactory]:
    built: list[Flask] = []

    def make(wait: bool = True, **config: Any) -> Flask:
        config.setdefault("ENGINE", "test-silence")
        app = fakes.create_app(config)
        if wait:
            assert state_of(app).wait_loaded(60), "engine did not load"
        built.append(app)
        return app

    yield make
    for app in built:
        state_of(app).engine.close()


def state_of(app: Flask) -> WorkerState:
    state: WorkerState = app.extensions[EXTENSION]
    return state
