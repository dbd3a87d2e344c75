"""POST /tts bodies: every way one can be wrong, each with its own status and message."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from tts_worker.audio import FORMATS, mp3_available
from tts_worker.engines import Catalog, SynthesisRequest
from tts_worker.errors import ApiError
from tts_worker.text import first_forbidden_char

FIELDS = ("text", "voice", "emotion", "speed", "format")


@dataclass(frozen=True)
class TtsRequest:
    synthesis: SynthesisRequest
    format: str


def parse_tts_request(request: Request, catalog: Catalog, max_chars: int,
                      max_body_bytes: int) -> TtsRequest:
    body = _json_object(request, max_body_bytes)
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field(s) {', '.join(unknown)}; "
                       f"the fields are {', '.join(FIELDS)}", valid=list(FIELDS))
    text = _text(body, max_chars)
    voice = _choice(body, "voice", catalog.voices, catalog.default_voice)
    emotion = _choice(body, "emotion", catalog.emotions, catalog.default_emotion)
    speed = _speed(body, catalog)
    fmt = _choice(body, "format", tuple(FORMATS), "wav")
    if fmt == "mp3" and not mp3_available():
        raise ApiError(400, "format_unavailable",
                       "mp3 needs the lameenc package, which this worker lacks; ask for wav",
                       valid=["wav"])
    return TtsRequest(SynthesisRequest(text, voice, emotion, speed), fmt)


def _json_object(request: Request, max_body_bytes: int) -> dict[str, Any]:
    if request.mimetype != "application/json":
        raise ApiError(400, "unsupported_content_type",
                       f"Content-Type must be application/json, not "
                       f"{request.mimetype or 'missing'!r}")
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise ApiError(413, "body_too_large",
                       f"the body is larger than {max_body_bytes} bytes",
                       max_body_bytes=max_body_bytes) from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_utf8",
                       f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(decoded, parse_constant=_reject_constant)
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _text(body: dict[str, Any], max_chars: int) -> str:
    if "text" not in body:
        raise ApiError(400, "missing_text", "the field 'text' is required")
    text = body["text"]
    if not isinstance(text, str):
        raise ApiError(400, "invalid_text", "'text' must be a string")
    if len(text) > max_chars:
        raise ApiError(413, "text_too_long",
                       f"'text' has {len(text)} characters; the limit is {max_chars}",
                       max_chars=max_chars)
    if not text.strip():
        raise ApiError(400, "empty_text", "'text' is empty or only whitespace")
    bad = first_forbidden_char(text)
    if bad is not None:
        index, char = bad
        raise ApiError(400, "control_characters",
                       f"'text' has a control character U+{ord(char):04X} at position {index}")
    return text


def _choice(body: dict[str, Any], field: str, valid: tuple[str, ...], default: str) -> str:
    if field not in body:
        return default
    value = body[field]
    if not isinstance(value, str) or value not in valid:
        raise ApiError(400, f"unknown_{field}",
                       f"{field} {value!r} is not one of {', '.join(valid)}", valid=list(valid))
    return value


def _speed(body: dict[str, Any], catalog: Catalog) -> float:
    if "speed" not in body:
        return 1.0
    value = body["speed"]
    low, high = catalog.min_speed, catalog.max_speed
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not low <= value <= high):
        raise ApiError(400, "invalid_speed",
                       f"speed {value!r} must be a number from {low:g} to {high:g}",
                       min=low, max=high)
    return float(value)
