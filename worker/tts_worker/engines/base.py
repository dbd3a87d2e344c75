"""The one small interface every engine implements, and what engines are built from.

Engines know nothing about HTTP or Prometheus: they take a SynthesisRequest, return Audio,
and report queueing, batches and CUDA out-of-memory errors to an EngineObserver.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Protocol

from tts_worker.audio import Audio


class EngineError(Exception):
    """Synthesis failed in a way another replica may not hit: the API answers 503."""


@dataclass(frozen=True)
class SynthesisRequest:
    text: str
    voice: str
    emotion: str
    speed: float


@dataclass(frozen=True)
class Catalog:
    """What callers may ask the engine for."""

    voices: tuple[str, ...]
    emotions: tuple[str, ...]
    default_voice: str
    default_emotion: str
    min_speed: float = 0.5
    max_speed: float = 2.0


@dataclass(frozen=True)
class EngineSettings:
    """The settings engines read (a slice of tts_worker.config.Settings)."""

    model_dir: str | None = None
    model_workdir: str | None = None
    device: str = "auto"
    fp16: str = "auto"
    max_batch: int | None = None
    batch_window_ms: float = 5.0
    chunk_chars: int = 120
    emotions: tuple[str, ...] | None = None
    timeout: float = 120.0
    espeak_bin: str = "espeak-ng"


class EngineObserver(Protocol):
    def queue_changed(self, delta: int) -> None: ...

    def oom(self) -> None: ...

    def batch(self, size: int) -> None: ...


class NullObserver:
    def queue_changed(self, delta: int) -> None:
        pass

    def oom(self) -> None:
        pass

    def batch(self, size: int) -> None:
        pass


class Engine(abc.ABC):
    """A speech engine. `synthesize` is called from many request threads at once."""

    name: str = ""

    @property
    @abc.abstractmethod
    def catalog(self) -> Catalog:
        """Voices and emotions; available before `load`."""

    @property
    @abc.abstractmethod
    def device(self) -> str:
        """`cpu` or `cuda`; final once `load` has returned."""

    @abc.abstractmethod
    def load(self) -> None:
        """Load and warm up, so that the first real request is served at full speed.

        Blocking. Raises EngineError when the engine cannot serve.
        """

    @abc.abstractmethod
    def synthesize(self, request: SynthesisRequest) -> Audio:
        """Speak one validated request. Raises EngineError on failure."""

    def close(self) -> None:  # noqa: B027 - most engines hold nothing to release
        """Release threads and devices."""
