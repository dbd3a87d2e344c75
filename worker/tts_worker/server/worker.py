"""gunicorn's threaded worker, with whole requests read by the poller, not by a thread.

gunicorn's gthread hands a connection to a pool thread, which then reads the request with
blocking reads and no time limit: a client that trickles its headers (slowloris) or sends
less body than its Content-Length keeps that thread for as long as it likes, and a new
connection that sends nothing keeps one for 5 s. Here a connection stays on the poller,
costing no thread, until its request has arrived:
- the poller reads what is there, without blocking, into a buffer;
- the header block (up to the blank line) must be complete within TTS_HEADER_TIMEOUT of
  the connection, or of the first byte of the next request on a kept-alive one;
- then, when the headers give one Content-Length of at most MAX_BUFFERED_BODY, the poller
  waits for that many body bytes too, within TTS_BODY_TIMEOUT more;
- a request late in either gets a 408 and is closed; a complete one goes to a thread with
  its bytes handed to gunicorn's parser, which parses them without waiting.
gunicorn's parser stays the only judge of framing: the poller only decides when to hand a
connection over. A chunked body, or anything the poller does not recognise, is handed over
with its headers and read by the app under TTS_BODY_TIMEOUT (tts_worker.body); a header
block over MAX_HEAD_BYTES is handed over at once and refused by the parser (431). Probes
never depend on any of this: they have their own listener (tts_worker.server.probes).

This relies on gthread's internals (accept, pending_conns, the keep-alive callbacks, the
parser's unreader), which is why gunicorn is pinned to one major version and
tests/worker/test_slow_clients.py runs the real thing.
"""

from __future__ import annotations

import contextlib
import errno
import json
import selectors
import socket
import threading
import time
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from tts_worker.config import load_settings

MAX_HEAD_BYTES = 65536  # beyond gunicorn's own header limits, so its parser says 431
MAX_BUFFERED_BODY = 1 << 20  # larger bodies are handed over (and refused by size) at once
_HEAD_END = b"\r\n\r\n"


def _timeout_response(code: str, what: str) -> bytes:
    body = json.dumps({"error": code, "message": f"the request's {what} did not arrive in "
                                                  "time"}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n" + body)


_TIMEOUT_RESPONSE = _timeout_response("header_timeout", "headers")
_BODY_TIMEOUT_RESPONSE = _timeout_response("body_timeout", "body")


class TtsThreadWorker(ThreadWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = load_settings()
        self.header_timeout = settings.header_timeout
        self.body_timeout = settings.body_timeout
        self._may_accept = threading.Event()
        self._may_accept.set()

    # A replacement process (tts_worker.server.recycle) takes no API connections until its
    # engine is ready: the process it replaces serves them meanwhile.
    def hold_accepting(self) -> None:
        self._may_accept.clear()

    def allow_accepting(self) -> None:
        self._may_accept.set()
        self.method_queue.defer(lambda: None)  # wake the loop, which then starts accepting

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled and self._may_accept.is_set())

    def accept(self, listener: Any) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:  # as gthread: a connection another process took, or gone
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())
        self._await_head(conn)

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        # A kept-alive connection starts its next request: the same rule as a new one.
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_head(conn)

    def _await_head(self, conn: Any) -> None:
        conn.head = b""
        conn.need = None  # bytes the whole request takes, once its headers say
        conn.timeout = time.monotonic() + self.header_timeout
        conn.sock.setblocking(False)
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             partial(self.on_pending_socket_readable, conn))

    def on_pending_socket_readable(self, conn: Any, client: Any) -> None:
        try:
            data = conn.sock.recv(MAX_HEAD_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop_pending(conn)
            conn.close()
            return
        conn.head += data
        if conn.need is None:
            end = conn.head.find(_HEAD_END)
            if end < 0 and len(conn.head) < MAX_HEAD_BYTES:
                return
            length = content_length(conn.head[:end]) if end >= 0 else None
            if length is not None and 0 < length <= MAX_BUFFERED_BODY:
                conn.need = end + len(_HEAD_END) + length
                conn.timeout = time.monotonic() + self.body_timeout
        if conn.need is not None and len(conn.head) < conn.need:
            return
        self._drop_pending(conn, close=False)
        conn.data_ready = True
        self.enqueue_req(conn)

    def _drop_pending(self, conn: Any, close: bool = True) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.poller.unregister(conn.sock)
        with contextlib.suppress(ValueError):
            self.pending_conns.remove(conn)
        if close:
            self.nr_conns -= 1

    def handle(self, conn: Any) -> Any:
        head = getattr(conn, "head", b"")
        if head:
            conn.head = b""
            conn.sock.setblocking(True)
            conn.init()  # idempotent: the parser exists from here on
            conn.parser.unreader.unread(head)
        return super().handle(conn)

    def murder_pending(self) -> None:
        # A scan, not gthread's pop-while-expired: a body wait moves a deadline later.
        now = time.monotonic()
        for conn in [c for c in self.pending_conns if c.timeout <= now]:
            self._drop_pending(conn)
            if getattr(conn, "head", b""):
                response = _BODY_TIMEOUT_RESPONSE if conn.need else _TIMEOUT_RESPONSE
                with contextlib.suppress(OSError):
                    conn.sock.send(response, socket.MSG_DONTWAIT)
            conn.close()


def content_length(head: bytes) -> int | None:
    """The body length a header block announces, when it announces exactly one plainly, with
    no Transfer-Encoding and no Expect (a client waiting for `100 Continue` sends its body
    only once the app reads it); None otherwise: the parser decides, with the app reading."""
    values = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name in (b"transfer-encoding", b"expect"):
            return None
        if name == b"content-length":
            values.append(value.strip())
    if len(values) != 1 or not values[0].isdigit() or len(values[0]) > 12:
        return None
    return int(values[0])
