"""Streaming on POST /tts and OpenAI's /v1/audio/speech, the latter driven by the real
`openai` package; time to first audio; voices and emotions mapped as documented."""

from __future__ import annotations

import io
import os
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from elastic_tts_dev import fake_engines as fakes
from elastic_tts_dev.servers import Server
from tests.required import require
from tests.worker.conftest import AppFactory
from tts_worker.audio import STREAMING_SIZE, read_wav

require("espeak-ng")
REPO = Path(__file__).resolve().parents[2]
SLOW_ESPEAK = REPO / "tests" / "e2e" / "espeak_at_speed.sh"
SENTENCES = "今天天气很好。我们去公园散步吧。春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少？"


def sample(text: str, name: str, **labels: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app(CACHE_ENTRIES=0, CHUNK_CHARS=16)


def test_tts_stream_sends_a_streaming_wav_whose_audio_equals_the_whole_one(app: Flask) -> None:
    client = app.test_client()
    whole = client.post("/tts", json={"text": SENTENCES})
    streamed = client.post("/tts", json={"text": SENTENCES, "stream": True}, buffered=False)
    assert streamed.status_code == 200 and streamed.is_streamed
    pieces = list(streamed.response)
    streamed.close()
    assert len(pieces) > 2  # one per chunk of text
    body = b"".join(pieces)
    assert body[:4] == b"RIFF" and int.from_bytes(body[4:8], "little") == STREAMING_SIZE
    assert read_wav(body) == read_wav(whole.data)
    assert streamed.headers["X-Sample-Rate"] == str(fakes.SAMPLE_RATE)
    first = fakes.LAST["test-silence"].calls[-len(pieces)].text
    assert first == "今天天气很好。"  # the first sentence alone comes first
    metrics = client.get("/metrics").get_data(as_text=True)
    assert sample(metrics, "tts_time_to_first_audio_seconds_count") == 2
    assert sample(metrics, "tts_requests_total", status="200") == 2
    assert sample(metrics, "tts_inflight_requests") == 0


def test_tts_stream_pcm_and_mp3(app: Flask) -> None:
    client = app.test_client()
    pcm = client.post("/tts", json={"text": SENTENCES, "stream": True, "format": "pcm"})
    assert pcm.mimetype == "audio/pcm" and len(pcm.data) == 2 * fakes.SAMPLES_PER_CHAR * len(
        "".join(SENTENCES.split()))
    mp3 = client.post("/tts", json={"text": SENTENCES, "stream": True, "format": "mp3"})
    assert mp3.mimetype == "audio/mpeg" and mp3.data[0] == 0xFF and mp3.data[1] & 0xE0 == 0xE0


def test_a_stream_closed_early_hands_its_slot_back(make_app: AppFactory) -> None:
    app = make_app(CACHE_ENTRIES=0, CHUNK_CHARS=16, MAX_CONCURRENCY=1, MAX_QUEUE=0)
    client = app.test_client()
    streamed = client.post("/tts", json={"text": SENTENCES, "stream": True}, buffered=False)
    next(iter(streamed.response))
    streamed.close()  # the client went away after the first piece
    assert client.post("/tts", json={"text": "还有空位吗"}).status_code == 200


@pytest.fixture(scope="module")
def espeak_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("stream")
    # espeak-ng held to 60 characters a second, so that a long text takes long enough
    # for "the first audio came before the end" to mean something.
    server = Server.gunicorn("tts_worker:create_app()", {
        "TTS_ENGINE": "espeak", "TTS_ESPEAK_BIN": str(SLOW_ESPEAK), "TTS_CACHE_ENTRIES": "0",
        "E2E_CHARS_PER_SECOND": "60", "E2E_REPLICA_LOCK": str(tmp / "lock"),
        "LC_ALL": "C.UTF-8", "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom"),
        "PATH": os.environ["PATH"]}, tmp / "server.log")
    server.wait_ready()
    yield server
    server.stop()


def test_the_first_audio_arrives_long_before_the_last(espeak_server: Server) -> None:
    text = SENTENCES * 2  # 80 characters: about 1.3 s at 60 characters a second
    started = time.perf_counter()
    with requests.post(espeak_server.url + "/tts", json={"text": text, "stream": True},
                       stream=True, timeout=60) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        chunks = response.iter_content(chunk_size=None)
        first = next(chunks)
        first_at = time.perf_counter() - started
        body = first + b"".join(chunks)
    total = time.perf_counter() - started
    assert first[:4] == b"RIFF"
    assert read_wav(body).duration > 3
    assert first_at < 0.5 * total, (first_at, total)


_OPENAI_CLIENTS: list[openai.OpenAI] = []


def openai_client(server: Server, retries: int = 0) -> openai.OpenAI:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed",
                           max_retries=retries, timeout=60)
    _OPENAI_CLIENTS.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_openai_clients() -> Iterator[None]:
    """Each client keeps an httpx connection pool; left to the garbage collector, its
    sockets surface as ResourceWarnings (errors here) in whichever test runs next."""
    yield
    while _OPENAI_CLIENTS:
        _OPENAI_CLIENTS.pop().close()


def test_the_openai_package_speaks_to_the_worker(espeak_server: Server) -> None:
    client = openai_client(espeak_server)
    speech = client.audio.speech.create(model="tts-1", voice="alloy", input="你好，世界。",
                                        response_format="wav")
    with wave.open(io.BytesIO(speech.content)) as wav:
        assert wav.getnframes() > 0
    mp3 = client.audio.speech.create(model="gpt-4o-mini-tts", voice="nova", input="你好。",
                                     instructions="Speak in a happy tone")
    assert mp3.content[0] == 0xFF  # MP3, OpenAI's default format


def test_the_openai_streaming_response_arrives_in_pieces(espeak_server: Server) -> None:
    client = openai_client(espeak_server)
    started = time.perf_counter()
    arrivals = []
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="echo", input=SENTENCES * 2, response_format="pcm") as reply:
        assert reply.headers["content-type"] == "audio/pcm"
        for chunk in reply.iter_bytes():
            arrivals.append((time.perf_counter() - started, len(chunk)))
    assert len(arrivals) > 2
    assert arrivals[0][0] < 0.5 * arrivals[-1][0]
    assert sum(size for _, size in arrivals) % 2 == 0


def test_openai_errors_reach_the_client_as_openai_errors(espeak_server: Server) -> None:
    client = openai_client(espeak_server)
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="robot", input="你好")  # type: ignore[arg-type]
    assert caught.value.code == "unknown_voice" and "alloy" not in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.speech.create(model="tts-1", voice="alloy", input="你好",
                                   response_format="opus")
    assert caught.value.code == "unknown_format"


def test_openai_retries_are_counted_once(tmp_path: Path) -> None:
    server = Server.gunicorn(fakes.GUNICORN_APP, {
        "TTS_ENGINE": "test-silence", "TTS_FAKE_DELAY": "1.2", "TTS_MAX_CONCURRENCY": "1",
        "TTS_MAX_QUEUE": "0", "TTS_CACHE_ENTRIES": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}, tmp_path / "server.log")
    try:
        server.wait_ready()
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(server.post, "/tts", {"text": "占着"})
            time.sleep(0.3)
            # Refused while the slot is busy (past its estimate: the admission rule thinks
            # it done, so the hint is the back-off alone); the client honours
            # retry-after-ms, 100, 200, 400, 800 ms, and tries again.
            speech = openai_client(server, retries=6).audio.speech.create(
                model="tts-1", voice="alloy", input="重试", response_format="wav")
            assert busy.result(10).status == 200
        assert speech.content[:4] == b"RIFF"
        metrics = server.probe("/metrics").body.decode()
        # Three or more refusals within the busy 1.2 s: the client took retry-after-ms, not
        # the whole second of Retry-After (which would have allowed one).
        assert sample(metrics, "tts_requests_total", status="429") >= 3
        assert sample(metrics, "tts_offered_requests_total") == 2
        assert sample(metrics, "tts_characters_total") == 4
    finally:
        server.stop()


def test_voice_and_emotion_mapping_is_published(make_app: AppFactory) -> None:
    app = make_app()
    catalog = app.test_client().get("/api/voices").get_json()
    assert catalog["openai_voices"]["alloy"] == "alto"
    assert catalog["openai_voices"]["ash"] == "bass"
    client = app.test_client()
    body = {"model": "tts-1", "input": "开心", "voice": "ash",
            "instructions": "用高兴的语气说", "response_format": "wav"}
    assert client.post("/v1/audio/speech", json=body).status_code == 200
    call = fakes.LAST["test-silence"].calls[-1]
    assert (call.voice, call.emotion) == ("bass", "happy")
    body = {"model": "tts-1", "input": "自选", "voice": "alto", "emotion": "neutral",
            "instructions": "happy"}
    assert client.post("/v1/audio/speech", json=body).status_code == 200
    assert fakes.LAST["test-silence"].calls[-1].emotion == "neutral"
