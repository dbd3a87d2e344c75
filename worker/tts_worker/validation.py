"""Synthesis request bodies: every way a field can be wrong, each with its own status and
message. The body itself (size, framing, JSON) is body.py's; this is the fields."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tts_worker.audio import FORMATS, mp3_available
from tts_worker.body import describe
from tts_worker.engines import Catalog, SynthesisRequest
from tts_worker.errors import ApiError
from tts_worker.text import first_forbidden_char

TTS_FIELDS = ("text", "voice", "emotion", "speed", "format", "stream")


@dataclass(frozen=True)
class SpeechRequest:
    synthesis: SynthesisRequest
    format: str  # wav | mp3 | pcm
    stream: bool  # chunked, sentence by sentence


def parse_tts_request(body: dict[str, Any], catalog: Catalog, max_chars: int) -> SpeechRequest:
    """POST /tts: {"text", "voice", "emotion", "speed", "format", "stream"}."""
    reject_unknown(body, TTS_FIELDS)
    text = check_text(body, "text", max_chars)
    voice = choice(body, "voice", catalog.voices, catalog.default_voice)
    emotion = choice(body, "emotion", catalog.emotions, catalog.default_emotion)
    speed = check_speed(body, "speed", catalog)
    fmt = check_format(body, "format", tuple(FORMATS), "wav")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "invalid_stream", f"stream {describe(stream)} must be true or false",
                       param="stream")
    return SpeechRequest(SynthesisRequest(text, voice, emotion, speed), fmt, stream)


def reject_unknown(body: dict[str, Any], fields: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(fields))
    if unknown:
        names = ", ".join(describe(name) for name in unknown[:10])
        raise ApiError(400, "unknown_field", f"unknown field(s) {names}; the fields are "
                       f"{', '.join(fields)}", param=unknown[0], valid=list(fields))


def check_text(body: dict[str, Any], field: str, max_chars: int) -> str:
    if field not in body:
        raise ApiError(400, f"missing_{field}", f"the field {field!r} is required", param=field)
    text = body[field]
    if not isinstance(text, str):
        raise ApiError(400, f"invalid_{field}", f"{field!r} must be a string", param=field)
    if len(text) > max_chars:
        raise ApiError(413, "text_too_long",
                       f"{field!r} has {len(text)} characters; the limit is {max_chars}",
                       param=field, max_chars=max_chars)
    if not text.strip():
        raise ApiError(400, "empty_text", f"{field!r} is empty or only whitespace", param=field)
    bad = first_forbidden_char(text)
    if bad is not None:
        index, char = bad
        raise ApiError(400, "control_characters",
                       f"{field!r} has a control character U+{ord(char):04X} at position "
                       f"{index}", param=field)
    return text


def choice(body: dict[str, Any], field: str, valid: tuple[str, ...], default: str,
           code: str | None = None) -> str:
    if field not in body:
        return default
    value = body[field]
    if not isinstance(value, str) or value not in valid:
        raise ApiError(400, code or f"unknown_{field}",
                       f"{field} {describe(value)} is not one of {', '.join(valid)}",
                       param=field, valid=list(valid))
    return value


def check_format(body: dict[str, Any], field: str, valid: tuple[str, ...], default: str) -> str:
    fmt = choice(body, field, valid, default, code="unknown_format")
    if fmt == "mp3" and not mp3_available():
        raise ApiError(400, "format_unavailable",
                       "mp3 needs the lameenc package, which this worker lacks; ask for wav",
                       param=field, valid=[f for f in valid if f != "mp3"])
    return fmt


def check_speed(body: dict[str, Any], field: str, catalog: Catalog) -> float:
    if field not in body:
        return 1.0
    value = body[field]
    low, high = catalog.min_speed, catalog.max_speed
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float is out of range anyway
            number = math.inf
    if not math.isfinite(number) or not low <= number <= high:
        raise ApiError(400, "invalid_speed",
                       f"speed {describe(value)} must be a number from {low:g} to {high:g}",
                       param=field, min=low, max=high)
    return number
