"""POST /v1/audio/speech: OpenAI's speech API, so that any OpenAI client can use the worker.

Fields: `model` (required; any name is accepted: the worker serves the one model it has
loaded), `input` (required), `voice` and `instructions` (openai_voices.py maps them),
`response_format` (mp3, the default as at OpenAI, wav or pcm), `speed`, `stream_format`
(`audio` only), and the extension `emotion`. The answer is always streamed, chunked,
sentence by sentence, as OpenAI's is; a cache hit comes whole. Errors are in OpenAI's
shape, `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from tts_worker import speech
from tts_worker.audio import FORMATS
from tts_worker.body import describe
from tts_worker.engines import SynthesisRequest
from tts_worker.errors import ApiError
from tts_worker.openai_voices import emotion_from_instructions, resolve_voice
from tts_worker.state import WorkerState
from tts_worker.validation import (
    SpeechRequest,
    check_format,
    check_speed,
    check_text,
    choice,
    reject_unknown,
)

bp = Blueprint("openai", __name__)
FIELDS = ("model", "input", "voice", "instructions", "response_format", "speed",
          "stream_format", "emotion")
MAX_MODEL_CHARS = 256
MAX_INSTRUCTIONS_CHARS = 4096


def parse_speech_request(body: dict[str, Any], state: WorkerState) -> SpeechRequest:
    catalog = state.engine.catalog
    reject_unknown(body, FIELDS)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > MAX_MODEL_CHARS:
        raise ApiError(400, "invalid_model", f"model {describe(model)} must be a non-empty "
                       f"string of at most {MAX_MODEL_CHARS} characters", param="model")
    text = check_text(body, "input", state.settings.max_chars)
    voice = catalog.default_voice
    if "voice" in body:
        named = body["voice"]
        found = resolve_voice(named, catalog) if isinstance(named, str) else None
        if found is None:
            raise ApiError(400, "unknown_voice", f"voice {describe(named)} is neither an "
                           "OpenAI voice nor one of " + ", ".join(catalog.voices),
                           param="voice", valid=list(catalog.voices))
        voice = found
    instructions = body.get("instructions", "")
    if not isinstance(instructions, str) or len(instructions) > MAX_INSTRUCTIONS_CHARS:
        raise ApiError(400, "invalid_instructions", "instructions must be a string of at "
                       f"most {MAX_INSTRUCTIONS_CHARS} characters", param="instructions")
    emotion = emotion_from_instructions(instructions, catalog)
    emotion = choice(body, "emotion", catalog.emotions, emotion)
    choice(body, "stream_format", ("audio",), "audio", code="unsupported_stream_format")
    fmt = check_format(body, "response_format", tuple(FORMATS), "mp3")
    speed = check_speed(body, "speed", catalog)
    return SpeechRequest(SynthesisRequest(text, voice, emotion, speed), fmt, stream=True)


@bp.post("/v1/audio/speech", endpoint="speech")
def speech_endpoint() -> Response:
    return speech.serve(parse_speech_request, text_field="input")
