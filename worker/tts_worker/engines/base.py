"""The one small interface every engine implements, and what engines are built from.

Engines know nothing about HTTP or Prometheus: they take a SynthesisRequest, return Audio,
and report queueing, batches and CUDA out-of-memory errors to an EngineObserver.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Protocol

from tts_worker.audio import Audio
from tts_worker.text import stream_chunks


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

    model: str | None = None
    model_root: str = "/opt/models"
    model_dir: str | None = None
    model_workdir: str | None = None
    device: str = "auto"
    fp16: str = "auto"
    max_batch: int | None = None
    batch_window_ms: float = 5.0
    chunk_chars: int = 120
    emotions: tuple[str, ...] | None = None
    voices: tuple[str, ...] | None = None
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

    def synthesize_stream(self, request: SynthesisRequest, chunk_chars: int) -> Iterator[Audio]:
        """Speak a request piece by piece, a short first sentence first, so that audio can
        start before the whole text is done (see text.stream_chunks). Raises EngineError."""
        for piece in stream_chunks(request.text, chunk_chars):
            yield self.synthesize(replace(request, text=piece))

    def device_memory_bytes(self) -> int | None:
        """Accelerator memory this process holds (CUDA reserved), or None without one."""
        return None

    def close(self) -> None:  # noqa: B027 - most engines hold nothing to release
        """Release threads and devices."""


def limit_voices(available: tuple[str, ...], wanted: tuple[str, ...] | None) -> tuple[str, ...]:
    """The catalogue TTS_VOICES asks for, in its order; every name must exist."""
    if wanted is None:
        return available
    missing = [name for name in wanted if name not in available]
    if missing:
        raise EngineError(f"TTS_VOICES names {', '.join(missing)}, which this engine lacks; "
                          f"it has {', '.join(available)}")
    return tuple(dict.fromkeys(wanted))


class UnavailableEngine(Engine):
    """Stands in for an engine that could not even be built (no model, a voice the model
    lacks): the worker stays up, and its readiness answer says why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    @property
    def catalog(self) -> Catalog:
        return Catalog(voices=("default",), emotions=("neutral",), default_voice="default",
                       default_emotion="neutral", min_speed=1.0, max_speed=1.0)

    @property
    def device(self) -> str:
        return "cpu"

    def load(self) -> None:
        raise EngineError(self.reason)

    def synthesize(self, request: SynthesisRequest) -> Audio:
        raise EngineError(self.reason)
