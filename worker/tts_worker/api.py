"""The API: POST /tts, GET /api/voices, GET /openapi.json."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from tts_worker import speech
from tts_worker.audio import FORMATS, mp3_available
from tts_worker.body import close_if_body_unread
from tts_worker.openai_voices import openai_voice_map
from tts_worker.openapi import build_openapi
from tts_worker.state import WorkerState, current_state
from tts_worker.validation import SpeechRequest, parse_tts_request

bp = Blueprint("api", __name__)
SYNTHESIS_ENDPOINTS = ("api.tts", "openai.speech")
# Probes and scrapes on the API port are not work: they do not count towards recycling.
_NOT_WORK = ("ops.healthz", "ops.readyz", "ops.metrics")


def _parse(body: dict[str, Any], state: WorkerState) -> SpeechRequest:
    return parse_tts_request(body, state.engine.catalog, state.settings.max_chars)


@bp.post("/tts")
def tts() -> Response:
    return speech.serve(_parse, text_field="text")


@bp.after_app_request
def _count_request(response: Response) -> Response:
    close_if_body_unread(request)
    state = current_state()
    if request.endpoint in SYNTHESIS_ENDPOINTS and not g.get("tts_streamed"):
        started = g.get("tts_started", time.perf_counter())
        state.metrics.request_done(response.status_code, time.perf_counter() - started)
        slo = g.get("tts_slo")  # set once a synthesis request was parsed (not for OPTIONS)
        if response.status_code == 200 and slo is not None:
            # Within the SLO is judged at the last byte: the server closes the response
            # once it has written the whole body.
            response.call_on_close(
                lambda: state.metrics.answered(time.perf_counter() - started, slo))
    if request.endpoint not in _NOT_WORK:
        state.recycle.after_request()
    return response


def formats() -> list[str]:
    return [f for f in FORMATS if f != "mp3" or mp3_available()]


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
        "formats": formats(),
        "speed": {"min": catalog.min_speed, "max": catalog.max_speed, "default": 1.0},
        "max_chars": state.settings.max_chars,
        "openai_voices": openai_voice_map(catalog),
    })


@bp.get("/openapi.json")
def openapi() -> Response:
    state = current_state()
    return jsonify(build_openapi(state.engine.catalog, state.settings.max_chars, formats()))
