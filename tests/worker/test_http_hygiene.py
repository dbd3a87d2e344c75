"""Bodies and connections as a real gunicorn sees them, over raw sockets: every body error a
JSON 4xx, and no request lost on a kept-alive connection after an error."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from elastic_tts_dev.fake_engines import GUNICORN_APP
from elastic_tts_dev.servers import Server

HEAD = b"POST /tts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("hygiene")
    server = Server.gunicorn(GUNICORN_APP, {"TTS_ENGINE": "test-silence", "TTS_MAX_CHARS": "50",
                                        "TTS_MAX_BODY_BYTES": "8192", "TTS_BODY_TIMEOUT": "2",
                                        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom")},
                             tmp / "server.log")
    server.wait_ready()
    yield server
    server.stop()


class Answer:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self.body = response.read()

    def json(self) -> dict[str, object]:
        assert self.headers["content-type"] == "application/json", self.headers
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value

    @property
    def closes(self) -> bool:
        return self.headers.get("connection") == "close"


def exchange(sock: socket.socket, raw: bytes) -> Answer:
    sock.sendall(raw)
    response = http.client.HTTPResponse(sock, method="POST")
    response.begin()
    return Answer(response)


def with_length(body: bytes, extra: bytes = b"") -> bytes:
    return HEAD + extra + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


VALID = with_length(json.dumps({"text": "好"}).encode())

# label, raw request, status, error code, whether the connection must close after it
CASES = [
    ("bad chunk size", HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
     400, "invalid_body_framing", True),
    ("chunk missing its terminator",
     HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", 400,
     "invalid_body_framing", True),
    ("a malformed trailer", HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
     b"e\r\n{\"text\": \"hi\"}\r\n0\r\nX Bad: 1\r\n\r\n", 400, "invalid_body_framing", True),
    ("a forbidden trailer", HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
     b"e\r\n{\"text\": \"hi\"}\r\n0\r\nContent-Length: 5\r\n\r\n", 400, "invalid_body_framing",
     True),
    ("a malformed chunk extension", HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
     b"e;a=\"\r\n{\"text\": \"hi\"}\r\n0\r\n\r\n", 400, "invalid_body_framing", True),
    ("chunked over the limit", HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
     + b"".join(b"400\r\n" + b"a" * 1024 + b"\r\n" for _ in range(9)) + b"0\r\n\r\n",
     413, "body_too_large", True),
    ("content-length over the limit", with_length(b"{" + b" " * 9000 + b"}"), 413,
     "body_too_large", True),
    ("gzip body", with_length(b"\x1f\x8b\x08\x00", b"Content-Encoding: gzip\r\n"), 415,
     "unsupported_content_encoding", True),
    ("json nested 2,000 deep", with_length(b'{"text": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
     400, "json_too_deep", False),
    ("speed of 400 digits", with_length(b'{"text": "hi", "speed": ' + b"9" * 400 + b"}"),
     400, "number_too_large", False),
    ("duplicate keys", with_length(b'{"text": "hi", "text": "ho"}'), 400, "duplicate_field",
     False),
    ("not json", with_length(b"{text: hi}"), 400, "invalid_json", False),
    ("text too long", with_length(json.dumps({"text": "字" * 51}).encode()), 413,
     "text_too_long", False),
    ("a BOM", with_length(b'\xef\xbb\xbf{"text": "hi"}'), 400, "invalid_json", False),
    ("chunked and fine", HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
     b"5\r\n{\"tex\r\n9\r\nt\": \"hi\"}\r\n0\r\n\r\n", 200, None, False),
]


@pytest.mark.parametrize(("label", "raw", "status", "code", "closes"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_body_error_is_json_and_the_connection_stays_usable_or_says_close(
        server: Server, label: str, raw: bytes, status: int, code: str | None,
        closes: bool) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        answer = exchange(sock, raw)
        assert answer.status == status, answer.body
        if code is not None:
            payload = answer.json()
            assert payload["error"] == code and payload["message"]
        assert answer.closes == closes, answer.headers
        if closes:
            assert sock.recv(65536) == b""  # it did close
        else:
            assert exchange(sock, VALID).status == 200  # the next request is answered


def test_a_stalled_chunked_body_is_a_408_from_the_app(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        answer = exchange(sock, HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"te")
    assert answer.status == 408 and answer.json()["error"] == "body_timeout"
    assert answer.closes


def test_errors_keep_keep_alive_across_many_requests(server: Server) -> None:
    bad = with_length(b'{"text": ""}')
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        statuses = [exchange(sock, VALID if i % 2 else bad).status for i in range(10)]
    assert statuses == [400, 200] * 5


def test_the_openai_route_answers_body_errors_in_openai_shape(server: Server) -> None:
    raw = (b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 9\r\n\r\n{\"model\":")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        answer = exchange(sock, raw)
    assert answer.status == 400
    error = answer.json()["error"]
    assert isinstance(error, dict) and error["code"] == "invalid_json"
    assert error["type"] == "invalid_request_error"


def test_server_log_has_no_traceback(server: Server) -> None:
    assert "Traceback" not in server.log()
