"""The espeak engine: real Mandarin speech from Debian's espeak-ng."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import pytest

from tests.required import require
from tests.worker.conftest import AppFactory
from tts_worker.audio import read_wav
from tts_worker.engines import EngineError, EngineSettings, NullObserver, SynthesisRequest
from tts_worker.engines.espeak import EspeakEngine
from tts_worker.engines.registry import create_engine

require("espeak-ng")

SENTENCE = "今天天气很好，我们一起去公园散步吧。"  # 17 syllables


@pytest.fixture(scope="module")
def engine() -> EspeakEngine:
    engine = create_engine("espeak", EngineSettings(), NullObserver())
    assert isinstance(engine, EspeakEngine)
    engine.load()
    return engine


def speak(engine: EspeakEngine, text: str = SENTENCE, **kwargs: object) -> float:
    request = SynthesisRequest(**{"text": text, "voice": "mandarin-female",
                                  "emotion": "neutral", "speed": 1.0, **kwargs})  # type: ignore[arg-type]
    return engine.synthesize(request).duration


# Mandarin runs at 3 to 7 syllables a second. Under plain `-v cmn`, Debian's 1.51 reads
# this sentence with English rules ("jin" as "gin", tone digits as "three"), in 6.4 s.
PLAUSIBLE = (17 / 7, 17 / 3)


def test_chinese_text_becomes_speech_of_plausible_length(engine: EspeakEngine) -> None:
    assert PLAUSIBLE[0] < speak(engine) < PLAUSIBLE[1]


def test_pinyin_is_read_as_mandarin(engine: EspeakEngine) -> None:
    pinyin = "jin1 tian1 tian1 qi4 hen3 hao3, wo3 men yi4 qi3 qu4 gong1 yuan2 san4 bu4 ba."
    assert PLAUSIBLE[0] < speak(engine, pinyin) < PLAUSIBLE[1]


def test_speed_and_emotion_change_the_speech(engine: EspeakEngine) -> None:
    normal = speak(engine)
    assert speak(engine, speed=2.0) < normal * 0.7
    assert speak(engine, speed=0.5) > normal * 1.5
    assert speak(engine, emotion="sad") > normal


def test_text_never_reaches_a_shell(engine: EspeakEngine, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    assert speak(engine, f"$(touch {marker}); `touch {marker}` | touch {marker} --help") > 0
    assert not marker.exists()


def test_a_missing_binary_is_an_engine_error() -> None:
    engine = EspeakEngine(EngineSettings(espeak_bin="/nonexistent/espeak-ng"))
    with pytest.raises(EngineError, match="espeak-ng not found"):
        engine.load()


def test_through_the_api_the_wav_is_valid(make_app: AppFactory) -> None:
    app = make_app(ENGINE="espeak")
    response = app.test_client().post("/tts", json={"text": SENTENCE,
                                                    "voice": "mandarin-male"})
    assert response.status_code == 200
    with wave.open(io.BytesIO(response.data)) as wav:  # the header is consistent
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        duration = wav.getnframes() / wav.getframerate()
    assert duration == pytest.approx(float(response.headers["X-Audio-Duration"]), abs=1e-3)
    assert read_wav(response.data).duration == pytest.approx(duration)
    assert PLAUSIBLE[0] < duration < PLAUSIBLE[1]
