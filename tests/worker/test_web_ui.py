"""The web UI in headless Chromium (Debian's /usr/bin/chromium, driven by playwright)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api

from elastic_tts_dev.servers import Server
from tests.required import require

CHROMIUM = "/usr/bin/chromium"
require(CHROMIUM, "espeak-ng")
SLOW_ESPEAK = Path(__file__).resolve().parents[2] / "tests" / "e2e" / "espeak_at_speed.sh"

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
LONG = "今天天气很好。我们去公园散步吧。春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少？" * 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ui")
    # espeak-ng held to 60 characters a second (as tests/e2e does), so that streaming
    # visibly starts playing before the text is done.
    server = Server.gunicorn("tts_worker:create_app()", {
        "TTS_ENGINE": "espeak", "TTS_MAX_CHARS": "100", "TTS_CACHE_ENTRIES": "0",
        "TTS_CHUNK_CHARS": "40",
        "TTS_ESPEAK_BIN": str(SLOW_ESPEAK), "E2E_CHARS_PER_SECOND": "60",
        "E2E_REPLICA_LOCK": str(tmp / "lock"), "LC_ALL": "C.UTF-8",
        "PATH": os.environ["PATH"], "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom")},
        tmp / "ui.log")
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(server: Server) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page()
        outside: list[str] = []
        page.on("request", lambda request: None if request.url.startswith(server.url)
                or request.url.startswith("blob:") or request.url.startswith("data:")
                else outside.append(request.url))
        page.goto(server.url + "/")
        page.wait_for_selector("#voice option", state="attached")
        yield page
        browser.close()
        assert outside == [], f"the page reached outside the worker: {outside}"


def player_duration(page: Any) -> float:
    duration: float = page.evaluate("""() => new Promise((resolve, reject) => {
        const player = document.getElementById('player');
        const done = () => resolve(player.duration);
        if (player.readyState >= 1) { done(); return; }
        player.addEventListener('loadedmetadata', done, {once: true});
        player.addEventListener('error', () => reject(new Error('cannot decode')), {once: true});
    })""")
    return duration


def test_the_page_is_in_chinese_with_chinese_voice_and_emotion_names(page: Any) -> None:
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.text_content("label[for=text]") == "文本"
    assert page.text_content("#synthesise") == "合成"
    options = page.eval_on_selector_all("#voice option", "os => os.map(o => [o.value, o.text])")
    assert ["mandarin-female", "普通话女声"] in options
    emotions = page.eval_on_selector_all("#emotion option", "os => os.map(o => o.text)")
    assert "开心" in emotions and "happy" not in emotions


def test_english_is_a_switch_that_is_remembered(page: Any, server: Server) -> None:
    page.click("#lang")
    assert page.get_attribute("html", "lang") == "en"
    assert page.text_content("#synthesise") == "Synthesise"
    assert "happy" in page.eval_on_selector_all("#emotion option", "os => os.map(o => o.text)")
    page.reload()
    page.wait_for_selector("#voice option", state="attached")
    assert page.text_content("label[for=text]") == "Text"
    page.click("#lang")
    assert page.text_content("label[for=text]") == "文本"


def test_ctrl_enter_streams_and_plays_before_the_text_is_done(page: Any) -> None:
    page.fill("#text", LONG)  # 80 characters: about 1.3 s of synthesis at 60 chars/s
    page.select_option("#voice", "mandarin-male")
    page.select_option("#emotion", "happy")
    page.evaluate("() => { window.ttsFirstAudioAt = window.ttsStreamDoneAt = undefined; }")
    page.focus("#text")
    page.keyboard.press("Control+Enter")
    page.wait_for_function("() => window.ttsStreamDoneAt !== undefined", timeout=30000)
    first, done, pieces = page.evaluate(
        "() => [window.ttsFirstAudioAt, window.ttsStreamDoneAt, window.ttsScheduled]")
    assert pieces > 2, pieces  # several pieces, each scheduled as it came
    assert first < 0.5 * done, (first, done)
    page.wait_for_function(
        "() => document.getElementById('player').src.startsWith('blob:')", timeout=10000)
    assert 3.0 < player_duration(page) < 30.0  # the whole text, kept as one WAV
    assert page.evaluate("() => document.getElementById('player').error") is None
    status = page.text_content("#status") or ""
    assert "首段音频" in status and "毫秒" in status
    assert page.get_attribute("#download", "download") == "speech.wav"
    assert page.is_visible("#download")


def test_mp3_is_fetched_whole_and_playable(page: Any) -> None:
    page.fill("#text", "你好，欢迎使用语音合成。")
    page.select_option("#format", "mp3")
    page.click("#synthesise")
    page.wait_for_function(
        "() => document.getElementById('player').src.startsWith('blob:')", timeout=20000)
    assert 0.5 < player_duration(page) < 10.0
    assert page.get_attribute("#download", "download") == "speech.mp3"
    page.select_option("#format", "wav")


def test_an_error_is_shown_in_chinese_and_clears_the_stale_result(page: Any) -> None:
    page.fill("#text", "先合成一句。")
    page.click("#synthesise")
    page.wait_for_function(
        "() => document.getElementById('player').src.startsWith('blob:')", timeout=20000)
    page.fill("#text", "字" * 101)
    assert "over" in (page.get_attribute(".counter", "class") or "")
    page.click("#synthesise")
    page.wait_for_selector("#status.error")
    assert "上限为 100 个字" in (page.text_content("#status") or "")
    assert page.evaluate("() => document.getElementById('player').getAttribute('src')") is None
    assert not page.is_visible("#download")
