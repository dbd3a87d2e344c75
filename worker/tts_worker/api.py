"""The API: POST /tts, GET /api/voices, GET /openapi.json."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, g, jsonify, request

from tts_worker.audio import FORMATS, AudioError, encode, mp3_available
from tts_worker.cache import CachedAudio, CacheKey
from tts_worker.engines import EngineError
from tts_worker.errors import ApiError
from tts_worker.openapi import build_openapi
from tts_worker.state import WorkerState, current_state
from tts_worker.validation import parse_tts_request

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)


@bp.post("/tts")
def tts() -> Response:
    g.tts_started = time.perf_counter()
    state = current_state()
    with state.drain.track():
        _check_serving(state)
        settings = state.settings
        parsed = parse_tts_request(request, state.engine.catalog, settings.max_chars,
                                   settings.max_body_bytes)
        spoken = parsed.synthesis
        state.metrics.characters.inc(len(spoken.text))
        key: CacheKey = (spoken.text, spoken.voice, spoken.emotion, spoken.speed, parsed.format)
        if state.cache.enabled:
            cached = state.cache.get(key)
            if cached is not None:
                state.metrics.cache_hits.inc()
                return _audio_response(cached, parsed.format, hit=True)
            state.metrics.cache_misses.inc()
        if not state.limiter.try_acquire():
            raise ApiError(429, "too_many_requests",
                           f"all {state.limiter.limit} synthesis slots of this worker are busy",
                           retry_after=settings.retry_after)
        state.metrics.inflight.inc()
        try:
            started = time.perf_counter()
            audio = state.engine.synthesize(spoken)
            body = encode(audio, parsed.format)
            item = CachedAudio(body, FORMATS[parsed.format], audio.duration,
                               time.perf_counter() - started)
        except (EngineError, AudioError) as exc:
            raise ApiError(503, "engine_failure", f"synthesis failed: {exc}",
                           retry_after=settings.retry_after) from exc
        except Exception as exc:
            # An engine that breaks its contract is still an engine failure, not a 500.
            log.exception("engine %s raised", state.engine.name)
            raise ApiError(503, "engine_failure", f"synthesis failed: {type(exc).__name__}",
                           retry_after=settings.retry_after) from exc
        finally:
            state.metrics.inflight.dec()
            state.limiter.release()
        state.cache.put(key, item)
        return _audio_response(item, parsed.format, hit=False)


@bp.after_request
def _count_request(response: Response) -> Response:
    if request.endpoint == "api.tts":
        started = g.get("tts_started", time.perf_counter())
        current_state().metrics.request_done(response.status_code, time.perf_counter() - started)
    return response


def _check_serving(state: WorkerState) -> None:
    problem = state.unavailable()
    if problem is not None:
        raise ApiError(503, *problem, retry_after=state.settings.retry_after)


def _audio_response(item: CachedAudio, fmt: str, *, hit: bool) -> Response:
    response = Response(item.body, status=200, mimetype=item.content_type)
    response.headers["X-Audio-Duration"] = f"{item.duration:.3f}"
    response.headers["X-Synthesis-Time"] = "0.000" if hit else f"{item.synthesis_seconds:.3f}"
    response.headers["X-Cache"] = "hit" if hit else "miss"
    response.headers["Content-Disposition"] = f'inline; filename="speech.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/voices")
def voices() -> Response:
    state = current_state()
    catalog = state.engine.catalog
    return jsonify({
        "engine": state.engine.name,
        "device": state.engine.device,
        "voices": list(catalog.voices),
        "default_voice": catalog.default_voice,
        "emotions": list(catalog.emotions),
        "default_emotion": catalog.default_emotion,
        "formats": ["wav", "mp3"] if mp3_available() else ["wav"],
        "speed": {"min": catalog.min_speed, "max": catalog.max_speed, "default": 1.0},
        "max_chars": state.settings.max_chars,
    })


@bp.get("/openapi.json")
def openapi() -> Response:
    state = current_state()
    return jsonify(build_openapi(state.engine.catalog, state.settings.max_chars,
                                 mp3=mp3_available()))
