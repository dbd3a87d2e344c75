"""One replica of a pool: a real worker (`elastic-tts-worker serve`, gunicorn, espeak) on a
free loopback port, with the service and pool labels a pod of that Deployment would get.

The worker's espeak binary is `espeak_at_speed.sh`, which serialises syntheses per replica
and holds each for characters / chars_per_second, so a replica serves at the pool's
declared throughput (see that script). Each replica has its own Prometheus multiprocess
directory: a shared one would add up every replica's counters.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from elastic_tts_dev.processes import free_port, stop_gracefully

REPO = Path(__file__).resolve().parents[2]
ESPEAK_AT_SPEED = Path(__file__).with_name("espeak_at_speed.sh")


class WorkerProcess:
    def __init__(self, service: str, pool: str, chars_per_second: int, log_dir: Path) -> None:
        self.service = service
        self.pool = pool
        self.port = free_port()
        self.probe_port = free_port()
        while self.probe_port == self.port:
            self.probe_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.monotonic()
        self.ready_at: float | None = None
        self._dir = Path(tempfile.mkdtemp(prefix=f"e2e-{pool}-", dir=log_dir))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TTS_", "E2E_"))}
        env.update({
            "TTS_SERVICE": service, "TTS_POOL": pool,
            "TTS_ESPEAK_BIN": str(ESPEAK_AT_SPEED),
            "TTS_CACHE_ENTRIES": "0",  # every request reaches the engine
            "TTS_DRAIN_LINGER": "0.5",
            "PROMETHEUS_MULTIPROC_DIR": str(self._dir / "prom"),
            "E2E_CHARS_PER_SECOND": str(chars_per_second),
            "E2E_REPLICA_LOCK": str(self._dir / "engine.lock"),
            "LC_ALL": "C.UTF-8",  # the script counts characters, not bytes
            "PYTHONPATH": os.pathsep.join([str(REPO / "worker"), env.get("PYTHONPATH", "")]),
        })
        self._log = (self._dir / "worker.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tts_worker.cli", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--probe-port", str(self.probe_port),
             "--engine", "espeak", "--workers", "1"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def cold_start(self) -> float | None:
        return None if self.ready_at is None else self.ready_at - self.started

    def probe_ready(self) -> bool:
        """One /readyz call; remembers the first time it answered 200."""
        try:
            ok = requests.get(f"{self.url}/readyz", timeout=0.5).status_code == 200
        except requests.RequestException:
            ok = False
        if ok and self.ready_at is None:
            self.ready_at = time.monotonic()
        return ok

    def terminate(self) -> None:
        """SIGTERM to the gunicorn master: the workers drain, then exit."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> None:
        stop_gracefully(self.process, timeout)
        self._log.close()

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return (self._dir / "worker.log").read_text(errors="replace")

    def cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
