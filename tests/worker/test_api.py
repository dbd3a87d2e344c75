"""Every route and every error of the API, through the Flask test client."""

from __future__ import annotations

import io
import json
import threading
import time
import wave
from typing import Any

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from elastic_tts_dev import fake_engines as fakes
from tests.worker.conftest import AppFactory, state_of
from tts_worker.config import ConfigError


def sample(app: Flask, name: str, **labels: str) -> float:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app(MAX_CHARS=50, MAX_BODY_BYTES=2048)


# --- the routes ---------------------------------------------------------------------------

def test_tts_returns_wav_with_duration_and_synthesis_headers(app: Flask) -> None:
    response = app.test_client().post("/tts", json={"text": "你好，世界。"})
    assert response.status_code == 200
    assert response.mimetype == "audio/wav"
    with wave.open(io.BytesIO(response.data)) as wav:
        assert wav.getframerate() == fakes.SAMPLE_RATE
        frames = wav.getnframes()
    assert frames == 6 * fakes.SAMPLES_PER_CHAR
    assert float(response.headers["X-Audio-Duration"]) == pytest.approx(0.06, abs=1e-3)
    assert float(response.headers["X-Synthesis-Time"]) >= 0
    assert response.headers["X-Cache"] == "miss"


def test_tts_mp3_is_a_real_mpeg_stream(app: Flask) -> None:
    response = app.test_client().post("/tts", json={"text": "你好。" * 10, "format": "mp3"})
    assert response.status_code == 200
    assert response.mimetype == "audio/mpeg"
    data = response.data
    # An MPEG audio frame starts with 11 set sync bits (LAME writes no ID3 tag by default).
    assert data[0] == 0xFF and data[1] & 0xE0 == 0xE0


def test_tts_passes_voice_emotion_and_speed_to_the_engine(app: Flask) -> None:
    body = {"text": "快乐", "voice": "bass", "emotion": "happy", "speed": 1.5}
    assert app.test_client().post("/tts", json=body).status_code == 200
    request = fakes.LAST["test-silence"].calls[-1]
    assert (request.text, request.voice, request.emotion, request.speed) == (
        "快乐", "bass", "happy", 1.5)


def test_defaults_come_from_the_engine_catalog(app: Flask) -> None:
    app.test_client().post("/tts", json={"text": "好"})
    request = fakes.LAST["test-silence"].calls[-1]
    assert (request.voice, request.emotion, request.speed) == ("alto", "neutral", 1.0)


def test_voices_lists_the_catalog_and_limits(app: Flask) -> None:
    body = app.test_client().get("/api/voices").get_json()
    assert body["engine"] == "test-silence"
    assert body["voices"] == ["alto", "bass"]
    assert body["emotions"] == ["neutral", "happy"]
    assert body["formats"] == ["wav", "mp3", "pcm"]
    assert body["max_chars"] == 50
    assert body["speed"] == {"min": 0.5, "max": 2.0, "default": 1.0}


@pytest.mark.parametrize(("path", "status", "mimetype"), [
    ("/", 200, "text/html"),
    ("/static/app.js", 200, "text/javascript"),
    ("/static/style.css", 200, "text/css"),
    ("/healthz", 200, "application/json"),
    ("/readyz", 200, "application/json"),
    ("/metrics", 200, "text/plain"),
    ("/api/voices", 200, "application/json"),
    ("/openapi.json", 200, "application/json"),
    ("/static/missing.js", 404, "application/json"),
    ("/nowhere", 404, "application/json"),
])
def test_get_routes(app: Flask, path: str, status: int, mimetype: str) -> None:
    with app.test_client().get(path) as response:
        assert (response.status_code, response.mimetype) == (status, mimetype)


def test_the_page_loads_nothing_from_elsewhere(app: Flask) -> None:
    client = app.test_client()
    with client.get("/") as page:
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for path in ("/", "/static/app.js", "/static/style.css"):
        with client.get(path) as response:
            text = response.get_data(as_text=True)
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_openapi_documents_exactly_the_routes(app: Flask) -> None:
    document = app.test_client().get("/openapi.json").get_json()
    documented = {(path, method.upper()) for path, item in document["paths"].items()
                  for method in item}
    routed = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
        routed |= {(path, m) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    assert documented == routed


def test_openapi_enums_follow_the_engine_and_limits(app: Flask) -> None:
    document = app.test_client().get("/openapi.json").get_json()
    schema = document["paths"]["/tts"]["post"]["requestBody"]["content"]["application/json"]
    properties = schema["schema"]["properties"]
    assert properties["voice"]["enum"] == ["alto", "bass"]
    assert properties["text"]["maxLength"] == 50


# --- the limits table ---------------------------------------------------------------------

ERROR_CASES: list[tuple[str, Any, str, int, str]] = [
    # label, body (dict = JSON, bytes = raw), content type, status, error code
    ("text too long", {"text": "字" * 51}, "application/json", 413, "text_too_long"),
    ("body too big", b'{"text": "' + b"a" * 4000 + b'"}', "application/json", 413,
     "body_too_large"),
    ("empty text", {"text": ""}, "application/json", 400, "empty_text"),
    ("whitespace only", {"text": " \n\t　"}, "application/json", 400, "empty_text"),
    ("missing text", {"voice": "alto"}, "application/json", 400, "missing_text"),
    ("text not a string", {"text": 5}, "application/json", 400, "invalid_text"),
    ("control character", {"text": "ab\u0007c"}, "application/json", 400, "control_characters"),
    ("C1 control", {"text": "ab\u0085c"}, "application/json", 400, "control_characters"),
    ("lone surrogate", b'{"text": "a\\ud800b"}', "application/json", 400,
     "control_characters"),
    ("invalid UTF-8", b'{"text": "\xff\xfe"}', "application/json", 400, "invalid_utf8"),
    ("not JSON", b"text=hello", "application/json", 400, "invalid_json"),
    ("JSON not an object", b'["hello"]', "application/json", 400, "invalid_json"),
    ("NaN speed", b'{"text": "hi", "speed": NaN}', "application/json", 400, "invalid_json"),
    ("wrong content type", b'{"text": "hi"}', "text/plain", 400, "unsupported_content_type"),
    ("form post", b"text=hi", "application/x-www-form-urlencoded", 400,
     "unsupported_content_type"),
    ("unknown voice", {"text": "hi", "voice": "soprano"}, "application/json", 400,
     "unknown_voice"),
    ("unknown emotion", {"text": "hi", "emotion": "smug"}, "application/json", 400,
     "unknown_emotion"),
    ("unknown format", {"text": "hi", "format": "ogg"}, "application/json", 400,
     "unknown_format"),
    ("speed too high", {"text": "hi", "speed": 3}, "application/json", 400, "invalid_speed"),
    ("speed a string", {"text": "hi", "speed": "fast"}, "application/json", 400,
     "invalid_speed"),
    ("speed a boolean", {"text": "hi", "speed": True}, "application/json", 400,
     "invalid_speed"),
    ("unknown field", {"text": "hi", "pitch": 3}, "application/json", 400, "unknown_field"),
    ("null voice", {"text": "hi", "voice": None}, "application/json", 400, "unknown_voice"),
    ("null speed", {"text": "hi", "speed": None}, "application/json", 400, "invalid_speed"),
]


@pytest.mark.parametrize(("label", "body", "content_type", "status", "code"), ERROR_CASES,
                         ids=[case[0] for case in ERROR_CASES])
def test_errors(app: Flask, label: str, body: Any, content_type: str, status: int,
                code: str) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = app.test_client().post("/tts", data=data, content_type=content_type)
    assert response.status_code == status, response.data
    payload = response.get_json()
    assert payload["error"] == code
    assert payload["message"]
    assert "Traceback" not in response.get_data(as_text=True)


def test_unknown_voice_lists_the_valid_ones(app: Flask) -> None:
    payload = app.test_client().post("/tts", json={"text": "hi", "voice": "x"}).get_json()
    assert payload["valid"] == ["alto", "bass"]
    payload = app.test_client().post("/tts", json={"text": "hi", "emotion": "x"}).get_json()
    assert payload["valid"] == ["neutral", "happy"]


def test_a_full_queue_answers_429_overloaded_with_retry_after(make_app: AppFactory) -> None:
    app = make_app(MAX_CONCURRENCY=1, MAX_QUEUE=0, CACHE_ENTRIES=0)
    engine = fakes.LAST["test-silence"]
    engine.gate = threading.Event()
    first: dict[str, int] = {}
    thread = threading.Thread(target=lambda: first.update(
        status=app.test_client().post("/tts", json={"text": "一"}).status_code))
    thread.start()
    assert engine.entered.acquire(timeout=10)
    busy = app.test_client().post("/tts", json={"text": "二"})
    engine.gate.set()
    thread.join(10)
    assert busy.status_code == 429
    assert int(busy.headers["Retry-After"]) >= 1
    payload = busy.get_json()
    assert (payload["error"], payload["reason"]) == ("overloaded", "queue_full")
    assert first["status"] == 200
    assert app.test_client().post("/tts", json={"text": "三"}).status_code == 200
    assert sample(app, "tts_refusals_total", reason="queue_full") == 1
    assert sample(app, "tts_refused_characters_total") == 1


def test_a_request_waits_in_the_queue_when_its_slo_allows(make_app: AppFactory) -> None:
    # 1000 chars/s: a 1-character request ahead costs ~1 ms; the SLO is 5 s.
    app = make_app(MAX_CONCURRENCY=1, MAX_QUEUE=4, THROUGHPUT=1000, CACHE_ENTRIES=0)
    engine = fakes.LAST["test-silence"]
    engine.gate = threading.Event()
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda t=t: statuses.append(
        app.test_client().post("/tts", json={"text": t}).status_code)) for t in "一二三"]
    for thread in threads:
        thread.start()
    assert engine.entered.acquire(timeout=10)
    deadline = time.monotonic() + 10
    while sample(app, "tts_queue_depth") < 2:
        assert time.monotonic() < deadline, "the requests never queued"
        time.sleep(0.01)
    assert sample(app, "tts_backlog_characters") >= 2
    assert sample(app, "tts_expected_wait_seconds") > 0
    engine.gate.set()
    for thread in threads:
        thread.join(10)
    assert statuses == [200, 200, 200]
    assert sample(app, "tts_queue_depth") == 0


def test_a_request_that_would_miss_its_slo_is_refused_with_the_wait(
        make_app: AppFactory) -> None:
    # 10 chars/s and a 1 s SLO: 50 characters ahead is 5 s of waiting.
    app = make_app(MAX_CONCURRENCY=1, MAX_QUEUE=4, THROUGHPUT=10, LATENCY_SLO_SECONDS=1,
                   CACHE_ENTRIES=0)
    engine = fakes.LAST["test-silence"]
    engine.gate = threading.Event()
    thread = threading.Thread(target=lambda: app.test_client().post(
        "/tts", json={"text": "长" * 50}))
    thread.start()
    assert engine.entered.acquire(timeout=10)
    refused = app.test_client().post("/tts", json={"text": "短"})
    engine.gate.set()
    thread.join(10)
    assert refused.status_code == 429
    payload = refused.get_json()
    assert (payload["error"], payload["reason"]) == ("overloaded", "slo")
    # W is about 5 s (less what the engine got through), T 0.1 s, B 1 s: about 4 s.
    assert 3 <= int(refused.headers["Retry-After"]) <= 5
    assert payload["budget_seconds"] == 1.0
    assert sample(app, "tts_refusals_total", reason="slo") == 1


def test_retries_are_not_offered_load_again(make_app: AppFactory) -> None:
    app = make_app(CACHE_ENTRIES=0)
    client = app.test_client()
    body = {"text": "五个字符呢"}
    client.post("/tts", json=body, headers={"X-Request-Id": "a-1"})
    client.post("/tts", json=body, headers={"X-Request-Id": "a-1"})  # the same id again
    client.post("/tts", json=body, headers={"X-Retry-Attempt": "2"})
    client.post("/tts", json=body, headers={"x-stainless-retry-count": "1"})
    client.post("/tts", json=body, headers={"X-Retry-Attempt": "0", "X-Request-Id": "b-1"})
    assert sample(app, "tts_requests_total", status="200") == 5
    assert sample(app, "tts_offered_requests_total") == 2
    assert sample(app, "tts_characters_total") == 10


@pytest.mark.parametrize("engine", ["test-broken", "test-buggy"])
def test_an_engine_failure_is_503_without_a_traceback(make_app: AppFactory,
                                                      engine: str) -> None:
    app = make_app(ENGINE=engine)
    response = app.test_client().post("/tts", json={"text": "你好"})
    assert response.status_code == 503
    assert response.get_json()["error"] == "engine_failure"
    assert response.headers["Retry-After"] == "1"
    assert "Traceback" not in response.get_data(as_text=True)
    assert sample(app, "tts_requests_total", status="503") == 1


def test_an_unexpected_error_is_json_500_without_a_traceback(app: Flask) -> None:
    def explode() -> str:
        raise RuntimeError("secret internals")

    app.add_url_rule("/explode", "explode", explode)
    response = app.test_client().get("/explode")
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal_error",
                                   "message": "internal error; see the worker's log"}


def test_loading_then_failed_engine(make_app: AppFactory) -> None:
    app = make_app(ENGINE="test-unloadable", wait=False)
    client = app.test_client()
    engine = fakes.LAST["test-unloadable"]
    assert client.get("/readyz").get_json()["error"] == "engine_loading"
    assert client.get("/healthz").status_code == 200
    assert client.post("/tts", json={"text": "hi"}).get_json()["error"] == "engine_loading"
    engine.load_gate.set()
    assert state_of(app).wait_loaded(10)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "corrupt" in ready.get_json()["message"]
    assert client.get("/healthz").status_code == 503
    assert client.post("/tts", json={"text": "hi"}).get_json()["error"] == "engine_failed"


def test_draining_fails_readiness_and_refuses_new_requests(app: Flask) -> None:
    client = app.test_client()
    state_of(app).drain.begin()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.get_json()["error"] == "draining"
    refused = client.post("/tts", json={"text": "hi"})
    assert refused.status_code == 503 and refused.get_json()["error"] == "draining"
    assert refused.headers["Retry-After"] == "1"
    assert client.get("/healthz").status_code == 200


def test_cache_serves_repeats_and_counts_hits_and_misses(app: Flask) -> None:
    client = app.test_client()
    body = {"text": "重复的话。", "voice": "bass"}
    first = client.post("/tts", json=body)
    second = client.post("/tts", json=body)
    other_format = client.post("/tts", json={**body, "format": "mp3"})
    assert (first.headers["X-Cache"], second.headers["X-Cache"],
            other_format.headers["X-Cache"]) == ("miss", "hit", "miss")
    assert second.data == first.data
    assert second.headers["X-Synthesis-Time"] == "0.000"
    assert len(fakes.LAST["test-silence"].calls) == 2
    assert sample(app, "tts_cache_hits_total") == 1
    assert sample(app, "tts_cache_misses_total") == 2


def test_the_cache_can_be_turned_off(make_app: AppFactory) -> None:
    app = make_app(CACHE_ENTRIES=0)
    client = app.test_client()
    for _ in range(2):
        assert client.post("/tts", json={"text": "一样"}).headers["X-Cache"] == "miss"
    assert len(fakes.LAST["test-silence"].calls) == 2


def test_requests_and_characters_are_counted(app: Flask) -> None:
    client = app.test_client()
    client.post("/tts", json={"text": "四个字符"})
    client.post("/tts", json={"text": "四个字符"})  # a cache hit still counts as load
    client.post("/tts", json={"text": ""})
    assert sample(app, "tts_requests_total", status="200") == 2
    assert sample(app, "tts_requests_total", status="400") == 1
    assert sample(app, "tts_characters_total") == 8
    assert sample(app, "tts_offered_requests_total") == 2
    assert sample(app, "tts_request_duration_seconds_count") == 2
    assert sample(app, "tts_time_to_first_audio_seconds_count") == 2
    assert sample(app, "tts_inflight_requests") == 0


@pytest.mark.parametrize(("config", "message"), [
    ({"MAX_CHARS": 0}, "TTS_MAX_CHARS = 0, must be at least 1"),
    ({"MAX_CHARS": "many"}, "TTS_MAX_CHARS = 'many', must be an integer"),
    ({"DEVICE": "tpu"}, "TTS_DEVICE = 'tpu', must be one of auto, cpu, cuda"),
    ({"ENGINE": "festival"}, "TTS_ENGINE = 'festival', must be one of"),
    ({"POOL": ""}, "TTS_POOL is empty"),
])
def test_bad_settings_name_the_variable(make_app: AppFactory, config: dict[str, Any],
                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        make_app(**config)


def test_settings_come_from_the_environment(make_app: AppFactory,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTS_MAX_CHARS", "7")
    monkeypatch.setenv("TTS_POOL", "123")
    app = make_app()
    settings = state_of(app).settings
    assert (settings.max_chars, settings.pool) == (7, "123")
    assert app.test_client().post("/tts", json={"text": "12345678"}).status_code == 413
