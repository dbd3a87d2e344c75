"""The web UI in headless Chromium (Debian's /usr/bin/chromium, driven by playwright)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright import sync_api

from elastic_tts_dev.servers import Server
from tests.required import require

CHROMIUM = "/usr/bin/chromium"
require(CHROMIUM, "espeak-ng")

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--no-first-run"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ui")
    server = Server.gunicorn("tts_worker:create_app()",
                             {"TTS_ENGINE": "espeak", "TTS_MAX_CHARS": "80",
                              "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom")}, tmp / "ui.log")
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(server: Server) -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page()
        outside: list[str] = []
        page.on("request", lambda request: None if request.url.startswith(server.url)
                or request.url.startswith("blob:") or request.url.startswith("data:")
                else outside.append(request.url))
        page.goto(server.url + "/")
        yield page
        browser.close()
        assert outside == [], f"the page reached outside the worker: {outside}"


def test_synthesise_gives_the_audio_element_a_playable_source(page: object,
                                                             server: Server) -> None:
    page.wait_for_selector("#voice option", state="attached")  # type: ignore[attr-defined]
    page.fill("#text", "你好，欢迎使用语音合成。")  # type: ignore[attr-defined]
    assert page.text_content("#count") == "12"  # type: ignore[attr-defined]
    assert page.text_content("#max") == "80"  # type: ignore[attr-defined]
    page.select_option("#voice", "mandarin-male")  # type: ignore[attr-defined]
    page.select_option("#emotion", "happy")  # type: ignore[attr-defined]
    page.click("#synthesise")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => document.getElementById('player').src.startsWith('blob:')", timeout=20000)
    duration = page.evaluate("""() => new Promise((resolve, reject) => {
        const player = document.getElementById('player');
        const done = () => resolve(player.duration);
        if (player.readyState >= 1) { done(); return; }
        player.addEventListener('loadedmetadata', done, {once: true});
        player.addEventListener('error', () => reject(new Error('cannot decode')), {once: true});
    })""")  # type: ignore[attr-defined]
    assert 1.0 < duration < 10.0
    assert page.evaluate("() => document.getElementById('player').error") is None  # type: ignore[attr-defined]
    status = page.text_content("#status")  # type: ignore[attr-defined]
    assert status is not None and "latency" in status and "ms" in status
    assert page.get_attribute("#download", "download") == "speech.wav"  # type: ignore[attr-defined]
    assert page.is_visible("#download")  # type: ignore[attr-defined]


def test_errors_are_shown_and_the_counter_warns(page: object) -> None:
    page.fill("#text", "字" * 81)  # type: ignore[attr-defined]
    assert "over" in (page.get_attribute(".counter", "class") or "")  # type: ignore[attr-defined]
    page.click("#synthesise")  # type: ignore[attr-defined]
    page.wait_for_selector("#status.error")  # type: ignore[attr-defined]
    assert "limit is 80" in (page.text_content("#status") or "")  # type: ignore[attr-defined]
