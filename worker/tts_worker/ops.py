"""Probes and metrics: GET /healthz, /readyz, /metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from tts_worker.errors import error_response
from tts_worker.state import FAILED, current_state

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Alive unless the engine failed to load: a restart is the only way out of that."""
    state = current_state()
    if state.status == FAILED:
        return error_response(503, "engine_failed", f"the engine failed to load: {state.error}")
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when the engine is loaded and warm, and not while draining."""
    state = current_state()
    problem = state.unavailable()
    if problem is not None:
        return error_response(503, *problem)
    return jsonify({"status": "ready", "engine": state.engine.name,
                    "device": state.engine.device})


@bp.get("/metrics")
def metrics() -> Response:
    state = current_state()
    return Response(state.metrics.render(), mimetype=None,
                    content_type=state.metrics.content_type)
