"""The Flask application factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from tts_worker import api, openai_api, ops, ui
from tts_worker.admission import Admission
from tts_worker.cache import AudioCache
from tts_worker.config import ConfigError, Settings, load_settings
from tts_worker.engines import Engine, EngineError, EngineSettings, UnknownEngine, create_engine
from tts_worker.engines.base import UnavailableEngine
from tts_worker.errors import register_error_handlers
from tts_worker.metrics import WorkerMetrics
from tts_worker.state import EXTENSION, Drain, WorkerState


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the worker: defaults, then `TTS_*` environment variables, then `config`.

    `config` uses the environment's keys without the prefix (`{"MAX_CHARS": 300}`). The
    engine starts loading in the background; /readyz answers 200 once it is warm.
    """
    app = Flask(__name__, static_folder="static")
    settings = load_settings(config, into=app.config)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]

    metrics = WorkerMetrics(settings.namespace, settings.service, settings.pool)
    engine: Engine
    try:
        engine = create_engine(settings.engine, engine_settings(settings), metrics)
    except UnknownEngine as exc:
        raise ConfigError(str(exc)) from None
    except EngineError as exc:
        # No model, or a voice the model lacks: stay up and say why in /readyz.
        engine = UnavailableEngine(settings.engine, str(exc))
    admission = Admission(settings.max_concurrency, settings.max_queue, settings.throughput,
                          settings.latency_slo_seconds, settings.max_wait, observer=metrics)
    state = WorkerState(settings=settings, engine=engine, metrics=metrics,
                        cache=AudioCache(settings.cache_entries, settings.cache_bytes),
                        admission=admission, drain=Drain())
    app.extensions[EXTENSION] = state

    register_error_handlers(app)
    app.register_blueprint(ui.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(openai_api.bp)
    app.register_blueprint(ops.bp)
    state.start_loading()
    return app


def engine_settings(settings: Settings) -> EngineSettings:
    return EngineSettings(
        model=settings.model,
        model_root=settings.model_root,
        model_dir=settings.model_dir,
        model_workdir=settings.model_workdir,
        device=settings.device,
        fp16=settings.fp16,
        max_batch=settings.max_batch,
        batch_window_ms=settings.batch_window_ms,
        chunk_chars=settings.chunk_chars,
        emotions=settings.emotions,
        voices=settings.voices,
        timeout=settings.engine_timeout,
        espeak_bin=settings.espeak_bin,
    )
