"""The probe listener: /healthz, /readyz and /metrics on their own socket, served by an
event loop on its own thread, so that no client of the API can delay them.

Why a separate listener: the API's requests are served by a pool of threads, each of which
reads its request and then synthesises. However that pool is sized, enough slow, lying or
idle clients can occupy it. Here nothing is shared with the API: the socket is another
(TTS_PROBE_BIND, bound by the gunicorn master so that it outlives any one worker process),
and every connection is a coroutine on one asyncio loop, parsed by h11, never a thread.
A connection whose request is not complete within REQUEST_TIMEOUT is closed, so stalled
clients of this port cannot pile up either. Answers come from the worker's state
(tts_worker.ops), which the API's threads never lock for long.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import h11

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 5.0  # seconds for a probe request to arrive whole
STOP_TIMEOUT = 2.0  # seconds a stopping process gives the probes it has accepted to finish
ACCEPTS_PER_WAKE = 64  # connections taken from the backlog per readiness, then yield
MAX_REQUEST_BYTES = 16384  # a probe's request line and headers
Answer = tuple[int, str, bytes]  # status, content type, body
Router = Callable[[str], Answer | None]

JSON = "application/json"


def json_answer(status: int, payload: dict[str, Any]) -> Answer:
    return status, JSON, json.dumps(payload).encode()


class ProbeServer:
    def __init__(self, listener: socket.socket, router: Router) -> None:
        self._listener = listener
        self._router = router
        self._loop = asyncio.new_event_loop()
        # The connections this process has accepted. Other processes share the socket, so on
        # stop those not yet accepted wait for them; these must be answered here, or the
        # kubelet sees a reset probe while the pod is perfectly Ready.
        self._connections: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tts-probes", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(10)

    def stop(self) -> None:
        """Stop accepting here (the master keeps the socket for the other processes), answer
        the probes already accepted, then end the loop."""
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
        try:
            future.result(STOP_TIMEOUT + 1)
        except Exception:  # a stuck probe must not hold up the process's exit
            log.warning("probe listener did not stop cleanly", exc_info=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _close(self) -> None:
        self._stopping = True
        # Every connection accepted so far has its task already (`_accept` makes it before
        # it returns), so none can slip between the accept and the wait below. (With
        # asyncio's own server, a handler task came a few loop iterations after the
        # accept, and a retiring process reset the probes accepted meanwhile.)
        self._loop.remove_reader(self._listener.fileno())
        self._listener.close()  # this process's descriptor; the master keeps the socket
        if self._connections:
            # Idle keep-alive connections end at their next request (answered with
            # Connection: close) or at this timeout; a probe in flight is answered.
            _, idle = await asyncio.wait(set(self._connections), timeout=STOP_TIMEOUT)
            for task in idle:  # closed here rather than left to die with the process
                task.cancel()
            if idle:
                await asyncio.wait(idle, timeout=0.5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._listener.setblocking(False)
            self._loop.add_reader(self._listener.fileno(), self._accept)
        finally:
            self._started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _accept(self) -> None:
        """Take what the backlog holds (the other processes take the rest), each
        connection's task made at once."""
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return  # another process was first, or nothing left
            except OSError:
                log.warning("probe listener: accept failed", exc_info=True)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._connection(conn))
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _connection(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=conn, limit=MAX_REQUEST_BYTES)
        except OSError:
            conn.close()
            return
        await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
        try:
            while True:
                try:
                    target = await asyncio.wait_for(self._request(conn, reader),
                                                    REQUEST_TIMEOUT)
                except TimeoutError:
                    return
                if target is None:
                    return
                status, content_type, body = self._answer(*target)
                headers = [("content-type", content_type),
                           ("content-length", str(len(body))),
                           ("cache-control", "no-store")]
                if self._stopping:
                    headers.append(("connection", "close"))
                writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
                if target[0] != "HEAD":
                    writer.write(conn.send(h11.Data(data=body)))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                status, content_type, body = json_answer(
                    exc.error_status_hint, {"error": "bad_request", "message": str(exc)})
                writer.write(conn.send(h11.Response(
                    status_code=status, headers=[("content-type", content_type),
                                                 ("content-length", str(len(body))),
                                                 ("connection", "close")])))
                writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        except (ConnectionError, h11.LocalProtocolError):
            pass
        finally:
            writer.close()

    async def _request(self, conn: h11.Connection,
                       reader: asyncio.StreamReader) -> tuple[str, str] | None:
        """(method, path) of the next whole request; None when the client is gone."""
        target: tuple[str, str] | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(4096))  # b"" tells h11 the peer closed
                continue
            if isinstance(event, h11.Request):
                target = (event.method.decode("ascii", "replace"),
                          event.target.decode("ascii", "replace"))
            elif isinstance(event, h11.EndOfMessage):
                return target
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None
            # A body on a probe (h11.Data) is read and dropped.

    def _answer(self, method: str, target: str) -> Answer:
        path = target.split("?", 1)[0]
        try:
            answer = self._router(path)
        except Exception:  # a probe must answer, whatever broke
            log.exception("probe %s failed", path)
            return json_answer(500, {"error": "internal_error",
                                     "message": "internal error; see the worker's log"})
        if answer is None:
            return json_answer(404, {"error": "not_found",
                                     "message": f"{path} is not served on the probe port; "
                                                "it has /healthz, /readyz and /metrics"})
        if method not in ("GET", "HEAD"):
            return json_answer(405, {"error": "method_not_allowed",
                                     "message": f"{method} is not allowed; use GET"})
        return answer
