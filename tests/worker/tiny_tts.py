"""A tiny torch TTS model, registered in modelscope's own registries for text-to-speech.

The worker loads it through the real `pipeline(Tasks.text_to_speech, model=<dir>)` path,
from a model directory laid out like Sambert's (configuration.json, voices/voices.json,
resource.zip that every init extracts into the directory). The real Sambert needs Python
<= 3.10 and ModelScope's own ttsfrd/kantts wheels, and its weights come from a hub this
machine cannot reach; this model keeps its contract:

- `pipe(input=text, voice=name)` -> `{"output_wav": <whole WAV file>}`;
- emotion arrives as `<speak><emotion category=.. intensity=..>` markup;
- one instance must not be called from two threads at once (it raises if it is).

Two pipelines: one shaped exactly like Sambert's (no batched forward), and one whose
preprocess returns a dict, so modelscope's `pipe(list, batch_size=n)` batches it.
Configuration knobs: `sample_rate`, `samples_per_char`, and `oom_above_chars` (a chunk
longer than this) and `oom_marker` (a chunk containing this), on which the model raises
torch.OutOfMemoryError as a GPU would.
"""

from __future__ import annotations

import io
import json
import re
import threading
import wave
import zipfile
from pathlib import Path
from typing import Any

import torch
from modelscope.models.base import TorchModel
from modelscope.models.builder import MODELS
from modelscope.pipelines.base import Pipeline
from modelscope.pipelines.builder import PIPELINES
from modelscope.utils.constant import Tasks

MODEL_TYPE = "tiny-tts-test"
SAMBERT_LIKE_PIPELINE = "tiny-tts-test-sambert-like"
BATCHED_PIPELINE = "tiny-tts-test-batched"
VOICES = ("tiny_f", "tiny_m")
_EMOTION = re.compile(r'<speak><emotion category="([^"]+)" intensity="[^"]+">(.*)</emotion>'
                      r"</speak>", re.S)


def plain_text(text: str) -> tuple[str, str | None]:
    """The spoken text and the emotion of one input."""
    match = _EMOTION.fullmatch(text)
    return (match.group(2), match.group(1)) if match else (text, None)


@MODELS.register_module(Tasks.text_to_speech, module_name=MODEL_TYPE)
class TinyTtsModel(TorchModel):
    """Character codes -> embedding -> linear -> tanh: samples_per_char samples a character."""

    def __init__(self, model_dir: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(model_dir, *args, **kwargs)
        self.sample_rate = int(kwargs.get("sample_rate", 24000))
        self.samples_per_char = int(kwargs.get("samples_per_char", 240))
        self.oom_above_chars = int(kwargs.get("oom_above_chars", 0))
        self.oom_marker = str(kwargs.get("oom_marker", "")) or None
        # Like Sambert: extract resources into the model directory on every init.
        with zipfile.ZipFile(Path(model_dir) / "resource.zip") as archive:
            archive.extractall(model_dir)
        voices = json.loads((Path(model_dir) / "voices" / "voices.json").read_text())
        self.voices = tuple(voices["voices"])
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(256, 16)
        self.proj = torch.nn.Linear(16, self.samples_per_char)
        self.calls: list[dict[str, Any]] = []  # one entry per call: texts, voice, emotions
        self._busy = threading.Lock()

    def forward(self, text: str, voice: str | None = None) -> bytes:  # type: ignore[override]
        return self.speak([text], voice)[0]

    def speak(self, texts: list[str], voice: str | None) -> list[bytes]:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("TinyTtsModel called from two threads at once")
        try:
            if voice is not None and voice not in self.voices:
                raise ValueError(f"voice {voice!r} does not exist")
            parsed = [plain_text(t) for t in texts]
            longest = max(len(spoken) for spoken, _ in parsed)
            marked = self.oom_marker and any(self.oom_marker in s for s, _ in parsed)
            if marked or (self.oom_above_chars and longest > self.oom_above_chars):
                raise torch.OutOfMemoryError(
                    f"CUDA out of memory. Tried to allocate {longest} MiB")
            self.calls.append({"texts": [s for s, _ in parsed], "voice": voice,
                               "emotions": [e for _, e in parsed], "raw": list(texts)})
            return [self._wav(spoken) for spoken, _ in parsed]
        finally:
            self._busy.release()

    def _wav(self, text: str) -> bytes:
        codes = torch.tensor([ord(c) % 256 for c in text], dtype=torch.long)
        with torch.no_grad():
            samples = torch.tanh(self.proj(self.embed(codes))).flatten() * 8000
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.sample_rate)
            wav.writeframes(samples.to(torch.int16).numpy().tobytes())
        return out.getvalue()


@PIPELINES.register_module(Tasks.text_to_speech, module_name=SAMBERT_LIKE_PIPELINE)
class SambertLikePipeline(Pipeline):
    """Shaped like TextToSpeechSambertHifiganPipeline: text in, voice as a forward param."""

    def preprocess(self, inputs: Any, **params: Any) -> Any:
        return inputs

    def forward(self, inputs: Any, **forward_params: Any) -> dict[str, Any]:
        return {"output_wav": self.model.forward(inputs, forward_params.get("voice"))}

    def postprocess(self, inputs: dict[str, Any], **params: Any) -> dict[str, Any]:
        return inputs

    def _sanitize_parameters(self, **params: Any) -> tuple[dict[str, Any], dict[str, Any],
                                                           dict[str, Any]]:
        return {}, params, {}


@PIPELINES.register_module(Tasks.text_to_speech, module_name=BATCHED_PIPELINE)
class BatchedPipeline(SambertLikePipeline):
    """Batchable by modelscope's `_process_batch`: preprocess yields a dict per input."""

    def preprocess(self, inputs: Any, **params: Any) -> Any:
        return {"text": inputs}

    def forward(self, inputs: Any, **forward_params: Any) -> dict[str, Any]:
        texts = inputs["text"]
        voice = forward_params.get("voice")
        if isinstance(texts, str):
            return {"output_wav": self.model.forward(texts, voice)}
        return {"output_wav": self.model.speak(list(texts), voice)}


def make_model_dir(root: Path, *, pipeline: str = SAMBERT_LIKE_PIPELINE,
                   sample_rate: int = 24000, samples_per_char: int = 240,
                   oom_above_chars: int = 0, oom_marker: str = "",
                   voices: tuple[str, ...] = VOICES) -> Path:
    """A model directory as snapshot_download would leave it."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "framework": "pytorch",
        "task": Tasks.text_to_speech,
        "model": {"type": MODEL_TYPE, "sample_rate": sample_rate,
                  "samples_per_char": samples_per_char, "oom_above_chars": oom_above_chars,
                  "oom_marker": oom_marker},
        "pipeline": {"type": pipeline},
    }
    (root / "configuration.json").write_text(json.dumps(config))
    (root / "voices").mkdir(exist_ok=True)
    (root / "voices" / "voices.json").write_text(json.dumps({"voices": list(voices)}))
    with zipfile.ZipFile(root / "resource.zip", "w") as archive:
        archive.writestr("resource/frontend.txt", "a frontend resource")
    return root
