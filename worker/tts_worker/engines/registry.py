"""Engines by name. Built-ins register on import; tests and benchmarks add their own."""

from __future__ import annotations

from collections.abc import Callable

from tts_worker.engines.base import Engine, EngineObserver, EngineSettings

EngineFactory = Callable[[EngineSettings, EngineObserver], Engine]

_FACTORIES: dict[str, EngineFactory] = {}


class UnknownEngine(LookupError):
    """TTS_ENGINE names no registered engine."""


def register_engine(name: str) -> Callable[[EngineFactory], EngineFactory]:
    def decorator(factory: EngineFactory) -> EngineFactory:
        _FACTORIES[name] = factory
        return factory

    return decorator


def engine_names() -> tuple[str, ...]:
    return tuple(sorted(_FACTORIES))


def create_engine(name: str, settings: EngineSettings, observer: EngineObserver) -> Engine:
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UnknownEngine(
            f"TTS_ENGINE = {name!r}, must be one of {', '.join(engine_names())}") from None
    return factory(settings, observer)
