"""The structure-aware fuzzer (tests/worker/fuzz.py) against a real gunicorn with the real
espeak engine: a seeded subset here, 10,000 cases in the slow tier."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from elastic_tts_dev.servers import Server
from tests.required import require
from tests.worker import fuzz

require("espeak-ng")
SEED = 20261201
VALID = (b"POST /tts HTTP/1.1\r\nHost: worker\r\nContent-Type: application/json\r\n"
         b"Content-Length: 16\r\n\r\n{\"text\": \"\xe5\xa5\xbd\"}  ")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz")
    server = Server.gunicorn("tts_worker:create_app()", {
        "TTS_ENGINE": "espeak", "TTS_HEADER_TIMEOUT": "0.5", "TTS_BODY_TIMEOUT": "0.5",
        "TTS_MAX_QUEUE": "64", "TTS_THROUGHPUT": "2000",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom")}, tmp / "server.log")
    server.wait_ready()
    yield server
    server.stop()


def read(sock: socket.socket, method: str = "POST") -> http.client.HTTPResponse | None:
    response = http.client.HTTPResponse(sock, method=method)
    try:
        response.begin()
    except (http.client.RemoteDisconnected, ConnectionError):
        return None
    return response


def check(server: Server, index: int) -> str | None:
    """None when the case was handled well, else what went wrong."""
    case = fuzz.case(SEED, index)
    where = f"case {index} [{case.label}]"
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        try:
            sock.sendall(case.raw)
        except OSError:
            return None if case.header_level else f"{where}: the server hung up mid-send"
        response = read(sock)
        if response is None:
            return None if case.header_level else f"{where}: no answer"
        status = response.status
        headers = {k.lower(): v for k, v in response.getheaders()}
        body = response.read()
        if status >= 500:
            return f"{where}: {status} {body[:300]!r}"
        if b"Traceback" in body or b'File "' in body:
            return f"{where}: a traceback in the body"
        if status >= 400 and not case.header_level:
            if headers.get("content-type") != "application/json":
                return f"{where}: {status} is not JSON: {headers} {body[:200]!r}"
            payload = json.loads(body)
            error = payload.get("error")
            if isinstance(error, dict):  # OpenAI's shape
                if not case.path.startswith("/v1/") or not error.get("message"):
                    return f"{where}: an odd error body {payload}"
            elif not (isinstance(error, str) and payload.get("message")):
                return f"{where}: an error without a code and message: {payload}"
        if case.stalls and status != 408 and 200 <= status < 300:
            return f"{where}: a body shorter than announced was served ({status})"
        keep_alive = headers.get("connection") != "close" and response.version == 11
        if keep_alive and not case.header_level:
            try:
                sock.sendall(VALID)
            except OSError:
                return f"{where}: the connection closed after {status} without saying so"
            follow = read(sock)
            if follow is None:
                return f"{where}: the next request on the connection got nothing"
            follow.read()
            if follow.status != 200:
                return f"{where}: the next request on the connection got {follow.status}"
    return None


def run(server: Server, cases: range) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        problems = [p for p in pool.map(lambda i: check(server, i), cases) if p]
    assert server.probe("/readyz").status == 200, "the worker is not ready after the fuzz"
    log = server.log()
    assert "Traceback" not in log and "Error handling request" not in log, log[-3000:]
    return problems


def test_the_cases_cover_every_layer() -> None:
    labels = " ".join(fuzz.case(SEED, i).label for i in range(600))
    for mark in ("deep", "duplicate", "escape", "bom", "utf16", "invalid", "chunk_bad_size",
                 "chunk_no_end", "short_length_close", "ctype=", "encoding=", "X-Retry",
                 "text:", "speed:number", "input:", "stream"):
        assert mark in labels, mark


def test_a_seeded_subset_of_the_fuzz(server: Server) -> None:
    problems = run(server, range(600))
    assert problems == [], "\n".join(problems[:20])


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ten_thousand_fuzzed_requests(server: Server) -> None:
    problems = run(server, range(600, 10600))
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems[:30])
