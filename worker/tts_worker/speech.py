"""One synthesis request, from body to audio, for both POST /tts and /v1/audio/speech.

In order: read the body (body.py); refuse while draining or loading (503); validate it
(the endpoint's parser); count it as offered load unless it is a retry (retries.py); answer
from the cache; take a place through admission (429 when waiting would miss the SLO);
wait for a slot; synthesise, whole or as a chunked stream sentence by sentence.

A streamed answer synthesises its first piece before the response starts, so an engine
that fails at once still gets its 503; a failure later can only cut the stream short
(the status is sent), which a client sees as a truncated chunked body.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, g, request

from tts_worker.admission import Refusal
from tts_worker.audio import FORMATS, Audio, AudioError, StreamEncoder, concat, encode
from tts_worker.body import parse_json_object, read_body
from tts_worker.cache import CachedAudio, CacheKey
from tts_worker.engines import EngineError
from tts_worker.errors import ApiError
from tts_worker.state import WorkerState, current_state
from tts_worker.validation import SpeechRequest

log = logging.getLogger(__name__)

Parser = Callable[[dict[str, Any], WorkerState], SpeechRequest]
_REFUSAL_REASON = {"draining": "draining", "engine_loading": "loading",
                   "engine_failed": "loading"}


def serve(parse: Parser, *, text_field: str) -> Response:
    g.tts_started = started = time.perf_counter()
    state = current_state()
    settings = state.settings
    cleanup = _Cleanup(state, started)
    try:
        if request.mimetype != "application/json":
            raise ApiError(400, "unsupported_content_type",
                           f"Content-Type must be application/json, not "
                           f"{request.mimetype or 'missing'!r}")
        raw = read_body(request, settings.max_body_bytes, settings.body_timeout)
        problem = state.unavailable()
        if problem is not None:
            _refuse_unavailable(state, raw, text_field, problem)
        parsed = parse(parse_json_object(raw), state)
        chars = len(parsed.synthesis.text)
        g.tts_slo = cleanup.slo = state.admission.slo(chars)
        retry = state.retries.is_retry(request.headers)
        if not retry:
            state.metrics.offered(chars)
        key: CacheKey = (parsed.synthesis.text, parsed.synthesis.voice,
                         parsed.synthesis.emotion, parsed.synthesis.speed, parsed.format)
        if state.cache.enabled:
            cached = state.cache.get(key)
            if not retry:
                (state.metrics.cache_hits if cached else state.metrics.cache_misses).inc()
            if cached is not None:
                state.metrics.first_audio.observe(time.perf_counter() - started)
                return audio_response(cached, parsed.format, hit=True)
        decision = state.admission.try_admit(chars)
        if isinstance(decision, Refusal):
            state.metrics.refused(decision.reason, chars)
            raise ApiError(429, "overloaded", _refusal_message(decision),
                           retry_after=decision.retry_after, reason=decision.reason,
                           expected_wait_seconds=round(decision.expected_wait, 3),
                           budget_seconds=round(decision.budget, 3))
        cleanup.ticket = decision
        if not decision.wait_for_slot(decision_timeout(state, chars)):
            raise ApiError(503, "queue_timeout", "no synthesis slot came free in time",
                           retry_after=settings.retry_after)
        cleanup.admitted()
        if parsed.stream:
            response = _stream(state, parsed, key, cleanup)
            cleanup.handed_off = True
            return response
        response = _whole(state, parsed, key, started)
        cleanup.served = True
        return response
    finally:
        if not cleanup.handed_off:
            cleanup(served=cleanup.served)


def decision_timeout(state: WorkerState, chars: int) -> float:
    # Admission promised W + T within the budget; a slot that takes far longer means the
    # engine is stuck, and the engine's own timeout bounds that.
    return state.admission.budget(chars) + state.settings.engine_timeout


def _refuse_unavailable(state: WorkerState, raw: bytes, text_field: str,
                        problem: tuple[str, str]) -> None:
    chars = _text_length(raw, text_field)
    if chars and not state.retries.is_retry(request.headers):
        state.metrics.offered(chars)
    state.metrics.refused(_REFUSAL_REASON[problem[0]], chars)
    raise ApiError(503, *problem, retry_after=state.settings.retry_after)


def _text_length(raw: bytes, field: str) -> int:
    """The text's length for counting a refusal, if the body has one; 0 otherwise."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return 0
    text = body.get(field) if isinstance(body, dict) else None
    return len(text) if isinstance(text, str) else 0


def _refusal_message(refusal: Refusal) -> str:
    if refusal.reason == "queue_full":
        return "this worker's queue is full; retry after the time in Retry-After"
    return (f"the expected wait {refusal.expected_wait:.1f} s plus the synthesis "
            f"{refusal.service_time:.1f} s would pass this request's SLO of "
            f"{refusal.budget:.1f} s; retry after the time in Retry-After")


def _synthesis_error(exc: Exception, state: WorkerState) -> ApiError:
    if not isinstance(exc, EngineError | AudioError):
        # An engine that breaks its contract is still an engine failure, not a 500.
        log.error("engine %s raised %s", state.engine.name, type(exc).__name__, exc_info=exc)
        return ApiError(503, "engine_failure", f"synthesis failed: {type(exc).__name__}",
                        retry_after=state.settings.retry_after)
    return ApiError(503, "engine_failure", f"synthesis failed: {exc}",
                    retry_after=state.settings.retry_after)


def _whole(state: WorkerState, parsed: SpeechRequest, key: CacheKey,
           started: float) -> Response:
    begun = time.perf_counter()
    try:
        audio = state.engine.synthesize(parsed.synthesis)
        body = encode(audio, parsed.format)
    except Exception as exc:
        raise _synthesis_error(exc, state) from exc
    item = CachedAudio(body, FORMATS[parsed.format], audio.duration,
                       time.perf_counter() - begun, audio.sample_rate)
    state.cache.put(key, item)
    state.metrics.first_audio.observe(time.perf_counter() - started)
    return audio_response(item, parsed.format, hit=False)


def _stream(state: WorkerState, parsed: SpeechRequest, key: CacheKey,
            cleanup: _Cleanup) -> Response:
    settings = state.settings
    pieces = state.engine.synthesize_stream(parsed.synthesis, settings.chunk_chars)
    encoder = StreamEncoder(parsed.format)
    try:
        first = next(pieces)
        head = encoder.encode(first)
    except StopIteration:
        raise ApiError(503, "engine_failure", "the engine produced no audio",
                       retry_after=settings.retry_after) from None
    except Exception as exc:
        raise _synthesis_error(exc, state) from exc

    def generate() -> Iterator[bytes]:
        parts: list[Audio] = [first]
        served = False
        try:
            state.metrics.first_audio.observe(time.perf_counter() - cleanup.started)
            yield head
            for piece in pieces:
                parts.append(piece)
                yield encoder.encode(piece)
            tail = encoder.finish()
            if tail:
                yield tail
            served = True
            whole = concat(parts)
            state.cache.put(key, CachedAudio(encode(whole, parsed.format),
                                             FORMATS[parsed.format], whole.duration,
                                             time.perf_counter() - cleanup.started,
                                             whole.sample_rate))
        except GeneratorExit:
            raise
        except Exception:
            log.exception("a streamed synthesis failed after its first audio; the stream "
                          "ends short")
            raise
        finally:
            pieces.close()  # type: ignore[attr-defined]
            cleanup(served=served)

    response = Response(generate(), status=200, mimetype=FORMATS[parsed.format],
                        direct_passthrough=True)
    response.call_on_close(lambda: cleanup(served=False))
    _audio_headers(response, parsed.format, encoder.sample_rate or first.sample_rate)
    response.headers["X-Cache"] = "miss"
    g.tts_streamed = True
    return response


class _Cleanup:
    """Everything a request holds, handed back exactly once: its drain count, its slot and
    in-flight count, and, for a stream, its request count, duration and whether it ended
    within its SLO (after_request cannot see a stream's end)."""

    def __init__(self, state: WorkerState, started: float) -> None:
        self.state = state
        self.started = started
        self.slo = 0.0  # the request's SLO, once its length is known
        self.ticket: Any = None
        self.handed_off = False  # a stream took over: it calls this when it ends
        self.served = False
        self._leave = state.drain.enter()
        self._inflight = False
        self._done = threading.Event()

    def admitted(self) -> None:
        self._inflight = True
        self.state.metrics.inflight.inc()

    def __call__(self, served: bool) -> None:
        if self._done.is_set():
            return
        self._done.set()
        if self.ticket is not None:
            self.ticket.done(served)
        if self._inflight:
            self.state.metrics.inflight.dec()
        if self.handed_off:
            elapsed = time.perf_counter() - self.started
            self.state.metrics.request_done(200, elapsed)
            if served:  # the last byte went out; a stream cut short is no good answer
                self.state.metrics.answered(elapsed, self.slo)
        self._leave()


def audio_response(item: CachedAudio, fmt: str, *, hit: bool) -> Response:
    response = Response(item.body, status=200, mimetype=item.content_type)
    response.headers["X-Audio-Duration"] = f"{item.duration:.3f}"
    response.headers["X-Synthesis-Time"] = "0.000" if hit else f"{item.synthesis_seconds:.3f}"
    response.headers["X-Cache"] = "hit" if hit else "miss"
    _audio_headers(response, fmt, item.sample_rate)
    return response


def _audio_headers(response: Response, fmt: str, sample_rate: int) -> None:
    response.headers["X-Sample-Rate"] = str(sample_rate)
    response.headers["Content-Disposition"] = f'inline; filename="speech.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
