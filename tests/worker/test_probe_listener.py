"""The probe listener itself: a process that stops answering probes (a recycled one handing
over to its replacement) first answers the probes it has already accepted."""

from __future__ import annotations

import socket
import threading
import time

from tts_worker.server.probes import ProbeServer, json_answer


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def read_answer(conn: socket.socket) -> bytes:
    conn.settimeout(5)
    data = b""
    while chunk := conn.recv(4096):
        data += chunk
    return data


def test_a_probe_accepted_before_stop_is_answered_with_connection_close() -> None:
    sock = listening_socket()
    server = ProbeServer(sock, lambda path: json_answer(200, {"ok": True}) if path == "/readyz"
                         else None)
    server.start()
    client = socket.create_connection(sock.getsockname(), timeout=5)
    client.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n")  # half a request: in flight
    time.sleep(0.3)  # the listener has accepted it and is reading
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    time.sleep(0.3)  # stop is under way, waiting for the probe in flight
    client.sendall(b"\r\n")
    answer = read_answer(client)
    stopper.join(10)
    assert not stopper.is_alive()
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200"), answer
    assert b"connection: close" in head, answer
    client.close()
    sock.close()


def test_stop_does_not_wait_past_its_bound_for_an_idle_connection() -> None:
    sock = listening_socket()
    server = ProbeServer(sock, lambda path: json_answer(200, {}))
    server.start()
    idle = socket.create_connection(sock.getsockname(), timeout=5)  # sends nothing
    time.sleep(0.2)
    begun = time.monotonic()
    server.stop()
    assert time.monotonic() - begun < 5  # STOP_TIMEOUT (2 s) plus slack, not REQUEST_TIMEOUT
    idle.close()
    sock.close()


def test_a_probe_accepted_as_the_process_stops_is_answered_by_it_or_left_to_the_next() -> None:
    """The hand-over of a recycle, in one process: each server has its own descriptor of
    the shared socket, as each forked worker does. The old one stops the instant after a
    probe arrives; the replacement then accepts whatever the old one left in the backlog.
    Every probe gets its 200 from one or the other. With asyncio's own server, a
    connection accepted a few loop iterations before the stop had no handler yet and was
    never answered (17 of 60 rounds here); a retiring process then reset it (CI)."""
    sock = listening_socket()
    for _ in range(20):
        old = ProbeServer(sock.dup(), lambda path: json_answer(200, {}))
        old.start()
        client = socket.create_connection(sock.getsockname(), timeout=5)
        client.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        old.stop()
        new = ProbeServer(sock.dup(), lambda path: json_answer(200, {}))
        new.start()
        try:
            answer = read_answer(client)
        finally:
            new.stop()
            client.close()
        assert answer.lower().startswith(b"http/1.1 200"), answer
    sock.close()
