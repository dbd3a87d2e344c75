"""Probes and metrics: GET /healthz, /readyz, /metrics.

The answers are plain functions of the worker's state, so that the probe listener
(tts_worker.server.probes, which kubelet and Prometheus use) and these Flask routes on the
API port give the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify

from tts_worker.state import FAILED, WorkerState, current_state

bp = Blueprint("ops", __name__)


def health(state: WorkerState) -> tuple[int, dict[str, Any]]:
    """Alive unless the engine failed to load: a restart is the only way out of that."""
    if state.status == FAILED:
        return 503, {"error": "engine_failed",
                     "message": f"the engine failed to load: {state.error}"}
    return 200, {"status": "ok"}


def readiness(state: WorkerState) -> tuple[int, dict[str, Any]]:
    """Ready when the engine is loaded and warm, and not while draining."""
    problem = state.unavailable()
    if problem is not None:
        return 503, {"error": problem[0], "message": problem[1]}
    return 200, {"status": "ready", "engine": state.engine.name,
                 "device": state.engine.device}


def _json(answer: tuple[int, dict[str, Any]]) -> Response:
    response = jsonify(answer[1])
    response.status_code = answer[0]
    return response


@bp.get("/healthz")
def healthz() -> Response:
    return _json(health(current_state()))


@bp.get("/readyz")
def readyz() -> Response:
    return _json(readiness(current_state()))


@bp.get("/metrics")
def metrics() -> Response:
    state = current_state()
    return Response(state.metrics.render(), mimetype=None,
                    content_type=state.metrics.content_type)


def probe_router(state: WorkerState) -> Callable[[str], tuple[int, str, bytes] | None]:
    """The probe listener's routes (tts_worker.server.probes): the same answers as above."""

    def route(path: str) -> tuple[int, str, bytes] | None:
        if path == "/healthz":
            return _encoded(health(state))
        if path == "/readyz":
            return _encoded(readiness(state))
        if path == "/metrics":
            return 200, state.metrics.content_type, state.metrics.render()
        return None

    return route


def _encoded(answer: tuple[int, dict[str, Any]]) -> tuple[int, str, bytes]:
    return answer[0], "application/json", json.dumps(answer[1]).encode()
