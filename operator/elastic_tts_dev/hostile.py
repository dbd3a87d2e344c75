"""Hostile clients on loopback, for tests and benchmarks: connections that trickle their
headers (slowloris), lie about their body length, or send nothing, held open as long as
the caller likes; and a prober that times /healthz, /readyz and /metrics meanwhile."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import requests

KINDS = ("slowloris", "lying_body", "silent")


class HostileClients:
    """`count` connections of `kind` to host:port, refreshed as the server closes them, so
    that the server faces about `count` of them for as long as this runs."""

    def __init__(self, host: str, port: int, kind: str, count: int) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        self.host, self.port, self.kind, self.count = host, port, kind, count
        self.opened = 0
        self.closed_by_server = 0
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hostile-{kind}", daemon=True)

    def __enter__(self) -> HostileClients:
        for _ in range(self.count):
            self._open()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()

    def _open(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=5)
        sock.setblocking(False)
        if self.kind == "lying_body":
            # Headers whole, 13 of the 100 body bytes the Content-Length promises.
            sock.send(b"POST /tts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"text\": \"hi")
        elif self.kind == "slowloris":
            sock.send(b"P")
        self._socks.append(sock)
        self.opened += 1

    def _run(self) -> None:
        slow = b"OST /tts HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100000
        position = {id(s): 0 for s in self._socks}
        while not self._stop.wait(1.0):
            alive = []
            for sock in self._socks:
                try:
                    sock.recv(65536, socket.MSG_PEEK)  # an answer (a 408) or the close
                    raise ConnectionResetError
                except BlockingIOError:
                    pass  # nothing from the server: still open
                except OSError:
                    self.closed_by_server += 1
                    sock.close()
                    continue
                if self.kind == "slowloris":  # one more header byte a second
                    at = position.get(id(sock), 0)
                    with contextlib.suppress(OSError):
                        sock.send(slow[at:at + 1])
                    position[id(sock)] = at + 1
                alive.append(sock)
            self._socks = alive
            while len(self._socks) < self.count and not self._stop.is_set():
                try:
                    self._open()
                except OSError:
                    break


@dataclass
class ProbeTimes:
    seconds: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def worst(self) -> float:
        return max((max(v) for v in self.seconds.values() if v), default=float("inf"))


def probe(base_url: str, rounds: int, interval: float = 0.5,
          paths: tuple[str, ...] = ("/healthz", "/readyz", "/metrics"),
          timeout: float = 1.0) -> ProbeTimes:
    """Each path `rounds` times, each on a fresh connection as kubelet's probes are."""
    times = ProbeTimes({path: [] for path in paths})
    for _ in range(rounds):
        for path in paths:
            started = time.perf_counter()
            try:
                status = requests.get(base_url + path, timeout=timeout).status_code
            except requests.RequestException as exc:
                times.failures.append(f"{path}: {type(exc).__name__}")
                continue
            elapsed = time.perf_counter() - started
            times.seconds[path].append(elapsed)
            if status != 200:
                times.failures.append(f"{path}: HTTP {status}")
        time.sleep(interval)
    return times


@contextlib.contextmanager
def hostile(host: str, port: int, counts: dict[str, int]) -> Iterator[list[HostileClients]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(HostileClients(host, port, kind, n))
               for kind, n in counts.items()]
