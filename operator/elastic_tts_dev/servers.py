"""A real worker server for tests and benchmarks: gunicorn (or the console script) on a
free loopback port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from elastic_tts_dev.processes import free_port, stop_gracefully

REPO = Path(__file__).resolve().parents[2]
GUNICORN_CONF = "python:tts_worker.gunicorn_conf"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def http(method: str, url: str, body: object | None = None, timeout: float = 30) -> Reply:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, dict(error.headers), error.read())


class Server:
    """A worker process started with `argv`, bound to 127.0.0.1:<port>."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], port: int,
                 log: Path, probe_port: int | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.probe_port = probe_port
        # Probes and /metrics: the probe listener when there is one, else the API port.
        self.probe_url = f"http://127.0.0.1:{probe_port}" if probe_port else self.url
        self._log = log.open("wb")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TTS_")}
        full_env.update(env)
        full_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [env.get("PYTHONPATH"), str(REPO), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(list(argv), cwd=REPO, env=full_env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.log_path = log

    @classmethod
    def gunicorn(cls, app: str, env: dict[str, str], log: Path) -> Server:
        port = free_port()
        probe_port = free_port()
        while probe_port == port:
            probe_port = free_port()
        env = {"TTS_BIND": f"127.0.0.1:{port}", "TTS_PROBE_BIND": f"127.0.0.1:{probe_port}",
               **env}
        argv = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, app]
        return cls(argv, env, port, log, probe_port)

    def wait_ready(self, timeout: float = 60, consecutive: int = 1) -> None:
        """Wait until /readyz answers 200 `consecutive` times in a row (one per worker)."""
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n"
                                     f"{self.log()}")
            try:
                ready = http("GET", self.probe_url + "/readyz", timeout=2).status == 200
                streak = streak + 1 if ready else 0
            except OSError:
                streak = 0
            if streak >= consecutive:
                return
            time.sleep(0.05)
        raise AssertionError(f"server not ready in {timeout} s:\n{self.log()}")

    def get(self, path: str) -> Reply:
        return http("GET", self.url + path)

    def probe(self, path: str) -> Reply:
        return http("GET", self.probe_url + path)

    def post(self, path: str, body: object, timeout: float = 30) -> Reply:
        return http("POST", self.url + path, body, timeout)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        stop_gracefully(self.process, 30)
        self._log.close()
