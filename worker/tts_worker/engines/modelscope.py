"""ModelScope text-to-speech (Sambert-HifiGAN and models with the same pipeline contract).

The contract: `pipeline(Tasks.text_to_speech, model=<dir>)` returns a callable;
`pipe(input=text, voice=name)` returns `{"output_wav": <a whole WAV file>}`; emotion is
markup in the text, `<speak><emotion category=".." intensity="..">..</emotion></speak>`.

What this engine adds around it:
- offline loading from an absolute local directory, copied first when read-only;
- the device: CUDA when present, else CPU; TTS_DEVICE=cpu hides the GPUs through
  CUDA_VISIBLE_DEVICES because Sambert's voice model ignores the pipeline's `device`;
- FP16 through autocast on CUDA, kept only when the warm-up under it yields audio;
- a warm-up of every voice before ready (Sambert loads each voice lazily);
- long text cut at sentence boundaries into chunks;
- one batcher thread per pipeline, so calls are serialised, and concurrent chunks are
  micro-batched where the pipeline has a batched forward (probed at load; Sambert's
  does not, so there it runs chunk by chunk);
- CUDA out-of-memory recovery: empty the cache, retry a batch one chunk at a time and a
  chunk in halves, and count every such error.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from tts_worker.audio import Audio, AudioError, change_tempo, concat, read_wav, sox_available
from tts_worker.engines.base import (
    Catalog,
    Engine,
    EngineError,
    EngineObserver,
    EngineSettings,
    SynthesisRequest,
    limit_voices,
)
from tts_worker.engines.batching import BatcherClosed, MicroBatcher
from tts_worker.engines.model_dir import read_voices, resolve_model, writable_model_dir
from tts_worker.engines.registry import register_engine
from tts_worker.text import chunk_text, halve, stream_chunks

log = logging.getLogger(__name__)

# The emotion categories of ModelScope's multi-emotion Sambert voices (zhitian_emo, ...).
SAMBERT_EMOTIONS = ("neutral", "happy", "angry", "sad", "fear", "hate", "surprise", "arousal")
DEFAULT_VOICE = "default"  # the catalog name when the model lists no voices
OUTPUT_WAV = "output_wav"
WARMUP_TEXT = "你好。"
GPU_MAX_BATCH = 8
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# Text is wrapped in markup; these characters could end the markup early.
_MARKUP_CHARS = str.maketrans({"<": " ", ">": " ", "&": " "})


@dataclass(frozen=True)
class _Chunk:
    text: str
    emotion: str


class ModelScopeEngine(Engine):
    name = "modelscope"

    def __init__(self, settings: EngineSettings, observer: EngineObserver) -> None:
        self._settings = settings
        self._observer = observer
        self._source = resolve_model(settings.model_dir, settings.model, settings.model_root)
        voices = limit_voices(read_voices(self._source) or (DEFAULT_VOICE,), settings.voices)
        emotions = settings.emotions or SAMBERT_EMOTIONS
        for name in (*voices, *emotions):
            if not _NAME.match(name):
                raise EngineError(f"voice or emotion name {name!r} has characters other than "
                                  "letters, digits, '_' and '-'")
        speed = (0.5, 2.0) if sox_available() else (1.0, 1.0)
        self._catalog = Catalog(voices=voices, emotions=tuple(emotions),
                                default_voice=voices[0],
                                default_emotion="neutral" if "neutral" in emotions
                                else emotions[0],
                                min_speed=speed[0], max_speed=speed[1])
        self._device = "cuda" if settings.device == "cuda" else "cpu"
        self._fp16 = False
        self._pipe: Any = None
        self._lock = threading.Lock()
        self._batched_forward = False
        self._batcher: MicroBatcher[_Chunk, Audio] | None = None
        self._torch: Any = None

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @property
    def device(self) -> str:
        return self._device

    @property
    def fp16(self) -> bool:
        return self._fp16

    @property
    def batched_forward(self) -> bool:
        return self._batched_forward

    def load(self) -> None:
        self._device = self._select_device()
        model_dir = writable_model_dir(self._source, self._settings.model_workdir)
        try:
            from modelscope.pipelines import pipeline
            from modelscope.utils.constant import Tasks

            # An absolute local directory and use_hf=False: no hub lookups, no transformers
            # fallback for a model type registered outside modelscope's index.
            self._pipe = pipeline(Tasks.text_to_speech, model=str(model_dir),
                                  device="gpu" if self._device == "cuda" else "cpu",
                                  use_hf=False)
        except Exception as exc:
            raise EngineError(f"cannot load the ModelScope pipeline from {model_dir}: "
                              f"{_describe(exc)}") from exc
        self._warm_up()
        max_batch = self._settings.max_batch or (GPU_MAX_BATCH if self._device == "cuda" else 1)
        if max_batch > 1:
            self._batched_forward = self._probe_batching()
        self._batcher = MicroBatcher(self._run_batch,
                                     max_batch=max_batch if self._batched_forward else 1,
                                     window=self._settings.batch_window_ms / 1000.0,
                                     observer=self._observer, name="tts-modelscope")
        log.info("modelscope engine ready: %s on %s%s, batch %d", model_dir, self._device,
                 " (fp16)" if self._fp16 else "", self._batcher.max_batch)

    def synthesize(self, request: SynthesisRequest) -> Audio:
        chunks = chunk_text(request.text, self._settings.chunk_chars) or [request.text]
        parts = list(self._collect(self._submit(request, chunks)))
        try:
            return change_tempo(concat(parts), request.speed)
        except AudioError as exc:
            raise EngineError(str(exc)) from exc

    def synthesize_stream(self, request: SynthesisRequest, chunk_chars: int) -> Iterator[Audio]:
        # Every chunk goes to the batcher at once (a GPU batches them); each is yielded as
        # soon as it and those before it are done.
        chunks = stream_chunks(request.text, chunk_chars) or [request.text]
        for part in self._collect(self._submit(request, chunks)):
            try:
                yield change_tempo(part, request.speed)
            except AudioError as exc:
                raise EngineError(str(exc)) from exc

    def device_memory_bytes(self) -> int | None:
        if self._device != "cuda" or self._torch is None:
            return None
        return int(self._torch.cuda.memory_reserved())

    def _submit(self, request: SynthesisRequest, chunks: list[str]) -> list[Future[Audio]]:
        if self._batcher is None:
            raise EngineError("the engine is not loaded")
        try:
            return self._batcher.submit(request.voice,
                                        [_Chunk(c, request.emotion) for c in chunks])
        except BatcherClosed as exc:
            raise EngineError(str(exc)) from exc

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()

    # Loading.

    def _select_device(self) -> str:
        if self._settings.device == "cpu":
            # Must happen before CUDA is initialised; Sambert would use a visible GPU anyway.
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        if os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
            log.warning("WORLD_SIZE=%s set; removing it, or Sambert would try NCCL",
                        os.environ["WORLD_SIZE"])
            os.environ.pop("WORLD_SIZE")
        import torch

        self._torch = torch
        if self._settings.device != "cpu" and torch.cuda.is_available():
            return "cuda"
        if self._settings.device == "cuda":
            raise EngineError("TTS_DEVICE = 'cuda' but no CUDA device is visible")
        return "cpu"

    def _warm_up(self) -> None:
        self._fp16 = self._device == "cuda" and self._settings.fp16 != "off"
        try:
            self._warm_up_voices()
            return
        except Exception as exc:
            if not self._fp16 or self._settings.fp16 == "on":
                raise EngineError(f"warm-up failed: {_describe(exc)}") from exc
            log.warning("warm-up under FP16 failed (%s); using FP32", _describe(exc))
        self._fp16 = False
        try:
            self._warm_up_voices()
        except Exception as exc:
            raise EngineError(f"warm-up failed: {_describe(exc)}") from exc

    def _warm_up_voices(self) -> None:
        # Each voice loads its acoustic model and vocoder on first use.
        for voice in self._catalog.voices:
            (wav,) = self._forward(voice, [_Chunk(WARMUP_TEXT, self._catalog.default_emotion)])
            if read_wav(wav).frames == 0:
                raise EngineError(f"voice {voice!r} produced no audio")

    def _probe_batching(self) -> bool:
        voice = self._catalog.default_voice
        chunk = _Chunk(WARMUP_TEXT, self._catalog.default_emotion)
        try:
            wavs = self._forward(voice, [chunk, chunk], batched=True)
            return len(wavs) == 2 and all(read_wav(w).frames > 0 for w in wavs)
        except Exception as exc:
            if _is_oom(exc):
                self._recover_from_oom()
            log.info("the pipeline has no batched forward (%s); chunks run one at a time",
                     _describe(exc))
            return False

    # Running, on the batcher thread.

    def _forward(self, voice: str, chunks: Sequence[_Chunk], batched: bool = False) -> list[bytes]:
        kwargs = {} if voice == DEFAULT_VOICE else {"voice": voice}
        texts = [_markup(c.text, c.emotion) for c in chunks]
        with self._lock, self._precision():
            if batched:
                outputs = self._pipe(texts, batch_size=len(texts), **kwargs)
                return [bytes(out[OUTPUT_WAV]) for out in outputs]
            return [bytes(self._pipe(input=text, **kwargs)[OUTPUT_WAV]) for text in texts]

    def _run_batch(self, voice: Hashable, chunks: list[_Chunk]) -> list[Audio | BaseException]:
        assert isinstance(voice, str)
        try:
            wavs = self._forward(voice, chunks, batched=len(chunks) > 1)
        except Exception as exc:
            if _is_oom(exc):
                self._recover_from_oom()
            if len(chunks) == 1:
                return [self._retry_smaller(voice, chunks[0]) if _is_oom(exc)
                        else _engine_error(exc)]
            # Retry one by one, so that one bad chunk fails only its own request.
            return [self._run_one(voice, chunk) for chunk in chunks]
        return [_parse(wav) for wav in wavs]

    def _run_one(self, voice: str, chunk: _Chunk) -> Audio | BaseException:
        try:
            (wav,) = self._forward(voice, [chunk])
        except Exception as exc:
            if not _is_oom(exc):
                return _engine_error(exc)
            self._recover_from_oom()
            return self._retry_smaller(voice, chunk)
        return _parse(wav)

    def _retry_smaller(self, voice: str, chunk: _Chunk) -> Audio | BaseException:
        pieces = halve(chunk.text)
        if len(pieces) < 2:
            size = len(chunk.text)
            return EngineError(f"CUDA out of memory even for {size} character"
                               f"{'' if size == 1 else 's'}")
        log.warning("CUDA out of memory on %d characters; retrying in %d pieces",
                    len(chunk.text), len(pieces))
        parts: list[Audio] = []
        for piece in pieces:
            result = self._run_one(voice, _Chunk(piece, chunk.emotion))
            if isinstance(result, BaseException):
                return result
            parts.append(result)
        return concat(parts)

    def _recover_from_oom(self) -> None:
        self._observer.oom()
        if self._device == "cuda":
            # Tensors of the failed call may sit in reference cycles with its traceback;
            # collect them so that empty_cache can hand their blocks back.
            gc.collect()
            self._torch.cuda.empty_cache()

    @contextlib.contextmanager
    def _precision(self) -> Iterator[None]:
        if self._fp16:
            with self._torch.autocast(device_type="cuda", dtype=self._torch.float16):
                yield
        else:
            yield

    # Waiting, on the request thread.

    def _collect(self, futures: list[Future[Audio]]) -> Iterator[Audio]:
        """Each chunk's audio in order; a consumer that stops early cancels the rest."""
        deadline = time.monotonic() + self._settings.timeout
        try:
            for future in futures:
                try:
                    part = future.result(timeout=max(0.0, deadline - time.monotonic()))
                except (FutureTimeout, CancelledError) as exc:
                    raise EngineError(f"synthesis took longer than "
                                      f"{self._settings.timeout:g} s") from exc
                except EngineError:
                    raise
                except Exception as exc:
                    raise _engine_error(exc) from exc
                yield part
        finally:
            for future in futures:
                future.cancel()


def _markup(text: str, emotion: str) -> str:
    clean = text.translate(_MARKUP_CHARS)
    if emotion == "neutral":
        return clean
    return f'<speak><emotion category="{emotion}" intensity="1.0">{clean}</emotion></speak>'


def _parse(wav: bytes) -> Audio | BaseException:
    try:
        return read_wav(wav)
    except AudioError as exc:
        return EngineError(f"the pipeline returned no usable WAV: {exc}")


def _is_oom(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _engine_error(exc: BaseException) -> EngineError:
    return exc if isinstance(exc, EngineError) else EngineError(_describe(exc))


def _describe(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@register_engine("modelscope")
def _create(settings: EngineSettings, observer: EngineObserver) -> Engine:
    return ModelScopeEngine(settings, observer)
