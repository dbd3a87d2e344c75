"""Clients that hold connections open (slowloris, lying Content-Length, silent) against a
real gunicorn: probes and /metrics keep answering within a second, and the API serves."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from elastic_tts_dev.fake_engines import GUNICORN_APP
from elastic_tts_dev.hostile import HostileClients, hostile, probe
from elastic_tts_dev.servers import Server

PER_KIND = 200


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server.gunicorn(GUNICORN_APP, {"TTS_ENGINE": "test-silence", "TTS_HEADER_TIMEOUT": "3",
                                        "TTS_BODY_TIMEOUT": "3",
                                        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")},
                             tmp_path / "server.log")
    server.wait_ready()
    yield server
    server.stop()


@pytest.mark.parametrize("kind", ["slowloris", "lying_body", "silent"])
def test_probes_answer_within_a_second_whatever_one_kind_holds_open(server: Server,
                                                                    kind: str) -> None:
    with HostileClients("127.0.0.1", server.port, kind, PER_KIND) as clients:
        time.sleep(1.5)
        times = probe(server.probe_url, rounds=4, interval=0.25)
        assert clients.opened >= PER_KIND
    assert times.failures == []
    assert times.worst() < 1.0, times.seconds


def test_all_three_kinds_at_once_and_the_api_still_serves(server: Server) -> None:
    counts = dict.fromkeys(("slowloris", "lying_body", "silent"), PER_KIND)
    with hostile("127.0.0.1", server.port, counts) as clients:
        time.sleep(1.5)
        times = probe(server.probe_url, rounds=4, interval=0.25)
        started = time.perf_counter()
        reply = requests.post(server.url + "/tts", json={"text": "你好"}, timeout=30)
        api_seconds = time.perf_counter() - started
        # The server closes what does not finish in time, and the clients open more.
        time.sleep(4)
        closed = {c.kind: c.closed_by_server for c in clients}
    assert times.failures == [] and times.worst() < 1.0, times.seconds
    assert reply.status_code == 200
    # Slow and silent clients cost the API no thread; lying bodies cost one each for at
    # most TTS_BODY_TIMEOUT, so the API answers within a few of those.
    assert api_seconds < 10, api_seconds
    assert all(n > 0 for n in closed.values()), closed


def test_a_header_timeout_is_a_json_408_and_a_closed_connection(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /tts HTTP/1.1\r\nHost: x\r\n")
        answer = sock.recv(65536)
        assert sock.recv(65536) == b""  # closed
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"Connection: close" in head
    assert b'"header_timeout"' in body


def test_a_lying_content_length_gets_a_json_408_after_the_body_timeout(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /tts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"text\": \"hi")
        started = time.monotonic()
        answer = b""
        while b"}" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"Connection: close" in answer and b'"body_timeout"' in answer
    assert 2.5 < waited < 8


def test_slow_clients_of_the_probe_port_itself_cost_it_nothing(server: Server) -> None:
    assert server.probe_port is not None
    with HostileClients("127.0.0.1", server.probe_port, "slowloris", PER_KIND), \
            HostileClients("127.0.0.1", server.probe_port, "silent", PER_KIND):
        time.sleep(1.0)
        times = probe(server.probe_url, rounds=4, interval=0.25)
    assert times.failures == [] and times.worst() < 1.0, times.seconds


def test_the_probe_port_answers_only_probes(server: Server) -> None:
    assert requests.get(server.probe_url + "/readyz", timeout=5).json()["status"] == "ready"
    missing = requests.post(server.probe_url + "/tts", json={"text": "hi"}, timeout=5)
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert requests.post(server.probe_url + "/readyz", timeout=5).status_code == 405
    with socket.create_connection(("127.0.0.1", server.probe_port), timeout=5) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")
