"""tts_requests_within_slo_total: the good answers of the dashboard's SLO attainment and
the burn-rate alerts. A 200 answer counts when its last byte left within its own SLO,
TTS_LATENCY_SLO_SECONDS * max(1, chars / 100), never TTS_MAX_WAIT."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.worker.conftest import AppFactory
from tests.worker.test_api import sample

WITHIN = "tts_requests_within_slo_total"
DELAY = 0.25  # every synthesis of the fake engine takes this long


@pytest.fixture
def slow(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> Flask:
    # 0.1 s per 100 characters: a short text's SLO is 0.1 s (missed at 0.25 s), a text of
    # 500 characters has 0.5 s. TTS_MAX_WAIT is far larger and must not count.
    monkeypatch.setenv("TTS_FAKE_DELAY", str(DELAY))
    return make_app(LATENCY_SLO_SECONDS=0.1, MAX_WAIT=60, CACHE_ENTRIES=0)


def test_the_series_exists_at_zero_from_the_start(make_app: AppFactory) -> None:
    app = make_app()
    assert f"{WITHIN}{{" in app.test_client().get("/metrics").get_data(as_text=True)
    assert sample(app, WITHIN) == 0


def test_the_slo_grows_with_the_text_and_ignores_max_wait(slow: Flask) -> None:
    client = slow.test_client()
    short = client.post("/tts", json={"text": "短句。"})
    long = client.post("/tts", json={"text": "长" * 500})
    assert (short.status_code, long.status_code) == (200, 200)
    short.close()
    long.close()
    assert sample(slow, "tts_requests_total", status="200") == 2
    assert sample(slow, WITHIN) == 1  # the long one: 0.25 s of its 0.5 s


def test_errors_never_count_and_cache_hits_do(make_app: AppFactory) -> None:
    app = make_app(LATENCY_SLO_SECONDS=5)
    client = app.test_client()
    for body in ({"text": "你好"}, {"text": "你好"}, {"text": ""}, {"speed": "fast"}):
        client.post("/tts", json=body).close()
    assert sample(app, "tts_requests_total", status="400") == 2
    assert sample(app, "tts_cache_hits_total") == 1
    assert sample(app, WITHIN) == 2


def test_a_stream_counts_when_its_last_byte_is_out(make_app: AppFactory) -> None:
    app = make_app(LATENCY_SLO_SECONDS=5, CACHE_ENTRIES=0, CHUNK_CHARS=8)
    client = app.test_client()
    text = "今天天气很好。我们去公园散步吧。春眠不觉晓。"
    streamed = client.post("/tts", json={"text": text, "stream": True}, buffered=False)
    first = next(iter(streamed.response))
    assert first[:4] == b"RIFF"
    assert sample(app, WITHIN) == 0  # still sending
    rest = list(streamed.response)
    streamed.close()
    assert rest
    assert sample(app, WITHIN) == 1
    # Cut short after its first piece: a 200 was sent, but it is no good answer.
    cut = client.post("/tts", json={"text": text, "stream": True}, buffered=False)
    next(iter(cut.response))
    cut.close()
    assert sample(app, "tts_requests_total", status="200") == 2
    assert sample(app, WITHIN) == 1


def test_the_openai_endpoint_counts_too(make_app: AppFactory) -> None:
    app = make_app(LATENCY_SLO_SECONDS=5)
    client = app.test_client()
    reply = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "你好。",
                                                   "voice": "alloy",
                                                   "response_format": "pcm"})
    assert reply.status_code == 200, reply.get_json()
    assert reply.get_data()  # read to the end: a stream counts at its last byte
    reply.close()
    assert sample(app, WITHIN) == 1


def test_an_options_request_is_no_answer(make_app: AppFactory) -> None:
    """Flask answers OPTIONS on the synthesis routes with 200 itself: not audio, not counted."""
    app = make_app()
    reply = app.test_client().options("/tts")
    assert reply.status_code == 200
    reply.close()
    assert sample(app, WITHIN) == 0
