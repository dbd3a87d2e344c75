"""The OpenAPI 3 document, built from the loaded engine's voices and the configured limits.

A test holds it to the app's URL map: every route documented, nothing documented that is
not routed.
"""

from __future__ import annotations

from typing import Any

from tts_worker import __version__
from tts_worker.engines import Catalog
from tts_worker.openai_voices import OPENAI_VOICES

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying",
                                "schema": {"type": "integer", "minimum": 1}}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error(description: str, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": _json(_ERROR_REF)}
    if retry:
        response["headers"] = _RETRY_AFTER
    return response


_OPENAI_ERROR = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type", "code"],
                             "properties": {"message": {"type": "string"},
                                            "type": {"type": "string"},
                                            "param": {"type": "string", "nullable": True},
                                            "code": {"type": "string"}}}}}


def _text(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def build_openapi(catalog: Catalog, max_chars: int, formats: list[str]) -> dict[str, Any]:
    text_rules = ("Not empty or only whitespace, no control characters other than tab and "
                  "line breaks; longer than maxLength is 413.")
    tts_request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["text"],
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": max_chars,
                     "description": f"What to say. {text_rules}"},
            "voice": {"type": "string", "enum": list(catalog.voices),
                      "default": catalog.default_voice},
            "emotion": {"type": "string", "enum": list(catalog.emotions),
                        "default": catalog.default_emotion},
            "speed": {"type": "number", "minimum": catalog.min_speed,
                      "maximum": catalog.max_speed, "default": 1.0},
            "format": {"type": "string", "enum": formats, "default": "wav",
                       "description": "pcm is raw 16-bit little-endian mono at "
                                      "X-Sample-Rate"},
            "stream": {"type": "boolean", "default": False,
                       "description": "Chunked, sentence by sentence: audio starts before "
                                      "the whole text is done (a WAV then has a streaming "
                                      "header)"},
        },
    }
    openai_voices = sorted({*catalog.voices, *OPENAI_VOICES})
    speech_request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string", "minLength": 1, "maxLength": 256,
                      "description": "Accepted and ignored: the worker serves the model it "
                                     "has loaded"},
            "input": {"type": "string", "minLength": 1, "maxLength": max_chars,
                      "description": f"What to say. {text_rules}"},
            "voice": {"type": "string", "enum": openai_voices,
                      "description": "A voice of this engine, or an OpenAI voice name, "
                                     "mapped as /api/voices lists (openai_voices)"},
            "instructions": {"type": "string", "maxLength": 4096,
                             "description": "The first emotion it names (English or "
                                            "Chinese) is used"},
            "emotion": {"type": "string", "enum": list(catalog.emotions),
                        "description": "Extension: an emotion by name"},
            "response_format": {"type": "string", "enum": formats, "default": "mp3"},
            "speed": {"type": "number", "minimum": catalog.min_speed,
                      "maximum": catalog.max_speed, "default": 1.0},
            "stream_format": {"type": "string", "enum": ["audio"], "default": "audio"},
        },
    }
    audio = {"schema": {"type": "string", "format": "binary"}}
    media = {"wav": "audio/wav", "mp3": "audio/mpeg", "pcm": "audio/pcm"}
    audio_content = {media[f]: audio for f in formats}
    audio_headers = {
        "X-Audio-Duration": {"description": "Length of the audio, seconds (not on a "
                                            "stream)", "schema": {"type": "string"}},
        "X-Synthesis-Time": {"description": "Seconds spent synthesising (0 on a cache "
                                            "hit; not on a stream)",
                             "schema": {"type": "string"}},
        "X-Cache": {"description": "hit or miss",
                    "schema": {"type": "string", "enum": ["hit", "miss"]}},
        "X-Sample-Rate": {"description": "Samples per second", "schema": {"type": "string"}},
    }
    tts_ok = {"description": "The speech", "content": audio_content, "headers": audio_headers}
    synthesis_errors = {
        "400": _error("Invalid body: not JSON, not UTF-8, broken framing, duplicate keys, "
                      "too deep, a number too long, wrong content type, empty text, control "
                      "characters, unknown voice, emotion, format or field, speed out of "
                      "range"),
        "408": _error("The body did not arrive within TTS_BODY_TIMEOUT"),
        "413": _error("Text longer than max_chars, or body too large"),
        "415": _error("A Content-Encoding other than identity"),
        "429": _error("Waiting would miss this request's SLO, or the queue is full "
                      "(error overloaded, reason slo or queue_full)", retry=True),
        "503": _error("Draining, loading, or the engine failed", retry=True),
    }
    voices = {
        "type": "object",
        "required": ["engine", "device", "voices", "default_voice", "emotions",
                     "default_emotion", "formats", "speed", "max_chars"],
        "properties": {
            "engine": {"type": "string"},
            "device": {"type": "string"},
            "voices": {"type": "array", "items": {"type": "string"}},
            "default_voice": {"type": "string"},
            "emotions": {"type": "array", "items": {"type": "string"}},
            "default_emotion": {"type": "string"},
            "formats": {"type": "array", "items": {"type": "string"}},
            "openai_voices": {"type": "object", "additionalProperties": {"type": "string"}},
            "speed": {"type": "object", "properties": {
                "min": {"type": "number"}, "max": {"type": "number"},
                "default": {"type": "number"}}},
            "max_chars": {"type": "integer"},
        },
    }
    status = {"type": "object", "required": ["status"],
              "properties": {"status": {"type": "string"}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "elastic-tts worker", "version": __version__,
                 "description": "Chinese text-to-speech. Errors are JSON objects with "
                                "`error` (a code) and `message`."},
        "paths": {
            "/": {"get": {"summary": "The web UI", "operationId": "ui",
                          "responses": {"200": _text("text/html", "The page")}}},
            "/static/{filename}": {"get": {
                "summary": "The web UI's script and styles", "operationId": "static",
                "parameters": [{"name": "filename", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The file",
                                      "content": {"*/*": {"schema": {"type": "string"}}}},
                              "404": _error("No such file")}}},
            "/tts": {"post": {
                "summary": "Synthesise speech", "operationId": "tts",
                "requestBody": {"required": True, "content": _json(tts_request)},
                "responses": {"200": tts_ok, **synthesis_errors}}},
            "/v1/audio/speech": {"post": {
                "summary": "Synthesise speech, OpenAI's speech API (always streamed)",
                "operationId": "openaiSpeech",
                "requestBody": {"required": True, "content": _json(speech_request)},
                "responses": {"200": tts_ok, **{
                    code: {**answer, "content": _json(_OPENAI_ERROR)}
                    for code, answer in synthesis_errors.items()}}}},
            "/api/voices": {"get": {"summary": "Voices, emotions and limits",
                                    "operationId": "voices",
                                    "responses": {"200": {"description": "The catalog",
                                                          "content": _json(voices)}}}},
            "/healthz": {"get": {"summary": "Liveness", "operationId": "healthz",
                                 "responses": {"200": {"description": "Alive",
                                                       "content": _json(status)},
                                               "503": _error("The engine failed to load")}}},
            "/readyz": {"get": {"summary": "Readiness", "operationId": "readyz",
                                "responses": {"200": {"description": "Ready",
                                                      "content": _json(status)},
                                              "503": _error("Loading, failed or draining")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics",
                                 "responses": {"200": _text("text/plain",
                                                            "Prometheus text format")}}},
            "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                      "responses": {"200": {"description": "OpenAPI 3",
                                                            "content": _json({"type":
                                                                              "object"})}}}},
        },
        "components": {"schemas": {"Error": {
            "type": "object", "required": ["error", "message"],
            "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}}},
    }
