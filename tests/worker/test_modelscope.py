"""The modelscope engine, end to end through modelscope's real `pipeline()` loading path.

The model is the tiny registered one (tests/worker/tiny_tts.py); the network is cut off,
so any attempt to reach a hub fails the test.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.worker import tiny_tts as tiny
from tests.worker.conftest import AppFactory, state_of
from tts_worker.engines import EngineError, EngineSettings, SynthesisRequest
from tts_worker.engines import model_dir as model_dir_module
from tts_worker.engines.modelscope import ModelScopeEngine

LONG_TEXT = ("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。" * 6)  # 144 characters


class Observer:
    def __init__(self) -> None:
        self.queue = 0
        self.ooms = 0
        self.batches: list[int] = []

    def queue_changed(self, delta: int) -> None:
        self.queue += delta

    def oom(self) -> None:
        self.ooms += 1

    def batch(self, size: int) -> None:
        self.batches.append(size)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Loading is offline: any lookup or connection beyond loopback fails the test."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo
    local = {"127.0.0.1", "::1", "localhost"}

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in local:
            attempts.append(address)
            raise OSError("the network is off in this test")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in local and host is not None:
            attempts.append(host)
            raise socket.gaierror("the network is off in this test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert attempts == [], f"tried to reach the network: {attempts}"


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # The engine sets CUDA_VISIBLE_DEVICES for TTS_DEVICE=cpu; keep it from leaking.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", ""))


EngineFactory = Callable[..., tuple[ModelScopeEngine, Observer]]


@pytest.fixture
def make_engine(tmp_path: Path, cpu_only: None) -> Iterator[EngineFactory]:
    engines: list[ModelScopeEngine] = []

    def make(model: dict[str, Any] | None = None, **settings: Any) -> tuple[ModelScopeEngine,
                                                                            Observer]:
        directory = tiny.make_model_dir(tmp_path / "model", **(model or {}))
        observer = Observer()
        engine = ModelScopeEngine(EngineSettings(model_dir=str(directory), device="cpu",
                                                 **settings), observer)
        engine.load()
        engines.append(engine)
        return engine, observer

    yield make
    for engine in engines:
        engine.close()


def model_of(engine: ModelScopeEngine) -> Any:
    return engine._pipe.model  # the tiny model's call log; our own test seam


def speak(engine: ModelScopeEngine, text: str, emotion: str = "neutral",
          voice: str = "tiny_f", speed: float = 1.0) -> Any:
    return engine.synthesize(SynthesisRequest(text, voice, emotion, speed))


def test_loads_through_the_real_pipeline_and_speaks(make_engine: EngineFactory) -> None:
    engine, _ = make_engine()
    assert type(engine._pipe).__name__ == "SambertLikePipeline"
    assert isinstance(model_of(engine), tiny.TinyTtsModel)
    assert engine.device == "cpu"
    assert engine.catalog.voices == tiny.VOICES
    audio = speak(engine, "你好世界")
    assert audio.sample_rate == 24000  # read from the WAV header, not assumed
    assert audio.frames == 4 * 240


def test_every_voice_is_warmed_up_before_ready(make_engine: EngineFactory) -> None:
    engine, _ = make_engine()
    warmed = [call["voice"] for call in model_of(engine).calls]
    assert warmed == list(tiny.VOICES)


def test_cpu_is_forced_by_hiding_the_gpus(make_engine: EngineFactory) -> None:
    make_engine()
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""


def test_long_text_is_split_at_sentence_boundaries(make_engine: EngineFactory) -> None:
    engine, observer = make_engine(chunk_chars=30)
    model = model_of(engine)
    model.calls.clear()
    audio = speak(engine, LONG_TEXT)
    chunks = [text for call in model.calls for text in call["texts"]]
    assert len(chunks) > 1
    assert all(len(chunk) <= 30 for chunk in chunks)
    assert all(chunk.endswith("。") for chunk in chunks)
    assert "".join(chunks) == LONG_TEXT
    assert audio.frames == len(LONG_TEXT) * 240
    assert observer.queue == 0


def test_emotion_goes_through_speak_markup(make_engine: EngineFactory) -> None:
    engine, _ = make_engine()
    model = model_of(engine)
    model.calls.clear()
    speak(engine, "真高兴<见到>你&", emotion="happy", voice="tiny_m")
    (call,) = model.calls
    assert call["raw"] == ['<speak><emotion category="happy" intensity="1.0">'
                           "真高兴 见到 你 </emotion></speak>"]
    assert (call["voice"], call["emotions"]) == ("tiny_m", ["happy"])
    speak(engine, "平静", emotion="neutral")
    assert model.calls[-1]["raw"] == ["平静"]


def test_speed_uses_a_pitch_preserving_tempo_change(make_engine: EngineFactory) -> None:
    engine, _ = make_engine()
    normal = speak(engine, LONG_TEXT)
    faster = speak(engine, LONG_TEXT, speed=2.0)
    assert faster.sample_rate == normal.sample_rate
    assert faster.duration == pytest.approx(normal.duration / 2, rel=0.1)


def test_out_of_memory_is_recovered_with_smaller_chunks(make_engine: EngineFactory) -> None:
    engine, observer = make_engine(model={"oom_above_chars": 8}, chunk_chars=24)
    model = model_of(engine)
    model.calls.clear()
    audio = speak(engine, LONG_TEXT)
    spoken = [text for call in model.calls for text in call["texts"]]
    assert all(len(text) <= 8 for text in spoken)
    assert "".join(spoken) == LONG_TEXT  # nothing lost or repeated
    assert audio.frames == len(LONG_TEXT) * 240
    assert observer.ooms > 0


def test_out_of_memory_on_a_minimal_chunk_is_an_engine_error(
        make_engine: EngineFactory) -> None:
    engine, observer = make_engine(model={"oom_marker": "爆"})
    with pytest.raises(EngineError, match="CUDA out of memory even for 1 character"):
        speak(engine, "爆炸了")  # halved to 爆 and 炸了; 爆 alone still fails
    assert observer.ooms == 2
    assert speak(engine, "没事").frames == 2 * 240  # and the engine still serves


def test_a_pipeline_without_batched_forward_runs_chunk_by_chunk(
        make_engine: EngineFactory) -> None:
    engine, _ = make_engine(max_batch=4)
    assert engine.batched_forward is False  # probed at load: Sambert's shape cannot batch
    model = model_of(engine)
    model.calls.clear()
    speak(engine, LONG_TEXT)
    assert all(len(call["texts"]) == 1 for call in model.calls)


def test_concurrent_requests_are_micro_batched(make_engine: EngineFactory) -> None:
    engine, observer = make_engine(model={"pipeline": tiny.BATCHED_PIPELINE},
                                   max_batch=4, batch_window_ms=50, chunk_chars=30)
    assert engine.batched_forward is True
    model = model_of(engine)
    model.calls.clear()
    results: list[Any] = []
    threads = [threading.Thread(target=lambda i=i: results.append(speak(engine, f"第{i}句话。")))
               for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 4
    assert max(len(call["texts"]) for call in model.calls) > 1
    assert max(observer.batches) > 1
    # A long request's own chunks form one batch.
    model.calls.clear()
    audio = speak(engine, LONG_TEXT)
    assert [len(call["texts"]) for call in model.calls] == [4, 2]  # 6 chunks of 24
    assert audio.frames == len(LONG_TEXT) * 240


def test_a_bad_item_in_a_batch_fails_only_its_request(make_engine: EngineFactory) -> None:
    engine, _ = make_engine(model={"pipeline": tiny.BATCHED_PIPELINE}, max_batch=4)
    with pytest.raises(EngineError, match="does not exist"):
        speak(engine, "你好", voice="nobody")
    assert speak(engine, "你好").frames == 2 * 240


def test_calls_are_serialised_under_concurrency(make_engine: EngineFactory) -> None:
    engine, _ = make_engine(chunk_chars=20)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(5):
                speak(engine, LONG_TEXT[:60])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []  # the tiny model raises if two threads ever call it at once


def test_a_read_only_model_dir_is_copied_to_a_writable_place(
        make_engine: EngineFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, for whom chmod does not make a directory read-only: stand in for
    # the writability probe instead (our own seam).
    source = (tmp_path / "model").resolve()
    monkeypatch.setattr(model_dir_module, "is_writable", lambda path: path != source)
    workdir = tmp_path / "work"
    engine, _ = make_engine(model_workdir=str(workdir))
    assert Path(model_of(engine).model_dir) == workdir.resolve() / "model"
    assert (workdir / "model" / "resource" / "frontend.txt").is_file()  # extracted there
    assert not (source / "resource").exists()  # not into the source
    assert model_dir_module.writable_model_dir(source, str(workdir)) == (workdir / "model"
                                                                         ).resolve()


@pytest.mark.parametrize(("setup", "message"), [
    (lambda root: None, "no such directory"),
    (lambda root: root.mkdir(), "has no configuration.json"),
])
def test_a_missing_model_is_never_downloaded(tmp_path: Path, setup: Callable[[Path], None],
                                             message: str) -> None:
    root = tmp_path / "damo" / "speech_sambert-hifigan_tts_zh-cn_16k"
    root.parent.mkdir()
    setup(root)
    with pytest.raises(EngineError, match=message):
        ModelScopeEngine(EngineSettings(model_dir=str(root)), Observer())


def test_a_relative_model_dir_is_made_absolute(tmp_path: Path, cpu_only: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    tiny.make_model_dir(tmp_path / "a" / "b")
    monkeypatch.chdir(tmp_path)
    engine = ModelScopeEngine(EngineSettings(model_dir="a/b", device="cpu"), Observer())
    engine.load()  # "a/b" alone would look like a hub id
    assert Path(engine._pipe.model.model_dir).is_absolute()
    engine.close()


def test_cuda_requested_without_a_gpu_is_an_engine_error(tmp_path: Path) -> None:
    directory = tiny.make_model_dir(tmp_path / "model")
    engine = ModelScopeEngine(EngineSettings(model_dir=str(directory), device="cuda"),
                              Observer())
    with pytest.raises(EngineError, match="no CUDA device"):
        engine.load()


def test_through_the_api(make_app: AppFactory, tmp_path: Path, cpu_only: None) -> None:
    directory = tiny.make_model_dir(tmp_path / "model", oom_above_chars=10)
    app = make_app(ENGINE="modelscope", MODEL_DIR=str(directory), DEVICE="cpu",
                   SERVICE="tts", POOL="cpu")
    client = app.test_client()
    assert client.get("/readyz").get_json() == {"status": "ready", "engine": "modelscope",
                                                "device": "cpu"}
    voices = client.get("/api/voices").get_json()
    assert voices["voices"] == list(tiny.VOICES)
    assert "happy" in voices["emotions"]
    response = client.post("/tts", json={"text": LONG_TEXT, "voice": "tiny_m",
                                         "emotion": "sad"})
    assert response.status_code == 200
    with wave.open(io.BytesIO(response.data)) as wav:
        assert wav.getframerate() == 24000
        assert wav.getnframes() == len(LONG_TEXT) * 240
    metrics = client.get("/metrics").get_data(as_text=True)
    assert ('tts_engine_info{device="cpu",engine="modelscope",namespace="default",pool="cpu",'
            'service="tts"} 1.0') in metrics
    assert state_of(app).metrics.oom_total._value.get() > 0
