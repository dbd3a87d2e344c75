"""Speech engines behind one interface (base.Engine), chosen by name from a registry."""

from tts_worker.engines import espeak, modelscope  # noqa: F401 - registers the built-ins
from tts_worker.engines.base import (
    Catalog,
    Engine,
    EngineError,
    EngineObserver,
    EngineSettings,
    NullObserver,
    SynthesisRequest,
)
from tts_worker.engines.registry import UnknownEngine, create_engine, engine_names, register_engine

__all__ = [
    "Catalog",
    "Engine",
    "EngineError",
    "EngineObserver",
    "EngineSettings",
    "NullObserver",
    "SynthesisRequest",
    "UnknownEngine",
    "create_engine",
    "engine_names",
    "register_engine",
]
