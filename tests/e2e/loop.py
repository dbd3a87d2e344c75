"""The closed loop of one scenario: workers -> Prometheus -> operator -> replicas -> workers.

`Loop` puts together, for one namespace: the pod runner (real workers), the operator as
an `elastic-tts run` subprocess (so a test can kill it and start it again), and a
`TickRecorder` that watches the TTSService and keeps every status the operator wrote.
The emulator and Prometheus are shared by the session (see conftest).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import TTSSERVICES
from elastic_tts_dev.processes import free_port, stop_gracefully
from tests.e2e.runner import PodRunner


class OperatorProcess:
    """`elastic-tts run` for one namespace, with the e2e tier's short rate windows."""

    def __init__(self, namespace: str, kubeconfig: Path, log: Path) -> None:
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.liveness = ""
        self.metrics_url = ""

    def start(self) -> None:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        self.liveness = f"http://127.0.0.1:{free_port()}/healthz"
        metrics_port = free_port()
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "elastic_tts.cli", "run", "--namespace", self.namespace,
                 "--standalone", "--liveness", self.liveness,
                 "--metrics-port", str(metrics_port), "--rate-windows", "4s,8s"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1

    def wait_alive(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"operator exited with {self.process.returncode}:\n"
                                     f"{self.log()}")
            try:
                if requests.get(self.liveness, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"operator not alive within {timeout:.0f}s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last status write; what a crash or OOM-kill does."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            stop_gracefully(self.process, 20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


@dataclass(frozen=True)
class Tick:
    """One control-loop tick, as the operator wrote it to status."""

    at: float  # the tick's `now` (the last memory sample's time)
    demand: float  # capacity units wanted
    replicas: dict[str, int]  # the decision
    pools: dict[str, dict[str, Any]]  # what it observed per pool (current, ready, ...)
    memory: dict[str, Any]
    status: dict[str, Any]


class TickRecorder:
    """A watch on the namespace's TTSServices; one `Tick` per new decision time."""

    def __init__(self, api_url: str, namespace: str, name: str) -> None:
        self.url = (f"{api_url}/apis/{TTSSERVICES.api_version}/namespaces/{namespace}/"
                    f"{TTSSERVICES.plural}")
        self.name = name
        self.ticks: list[Tick] = []
        self.statuses: list[tuple[float, dict[str, Any]]] = []  # (time.time(), status)
        self.reconnects = 0
        self._response: requests.Response | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="tick-recorder", daemon=True)

    def start(self) -> TickRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            response.close()  # unblocks the read of a watch that would stream forever
        self._thread.join(15)

    def _watch(self) -> None:
        for _ in range(10_000):  # bounded; each pass lasts until a 10 s silence or stop
            if self._stop.is_set():
                return
            try:
                with requests.get(self.url, params={"watch": "true"}, stream=True,
                                  timeout=(5, 10)) as response:
                    self._response = response
                    for line in response.iter_lines():
                        if self._stop.is_set():
                            return
                        if line:
                            self._record(json.loads(line).get("object") or {})
            except (requests.RequestException, ValueError, AttributeError):
                time.sleep(0.2)  # AttributeError: the response closed under the read
            self.reconnects += 1

    def _record(self, obj: dict[str, Any]) -> None:
        if obj.get("metadata", {}).get("name") != self.name:
            return
        status = obj.get("status") or {}
        self.statuses.append((time.time(), status))
        samples = ((status.get("engine") or {}).get("memory") or {}).get("samples") or []
        decision = status.get("lastDecision") or {}
        if not samples or "replicas" not in decision:
            return
        at, demand = float(samples[-1][0]), float(samples[-1][1])
        if self.ticks and at <= self.ticks[-1].at:
            return  # an older write seen again, or a write without a new tick
        self.ticks.append(Tick(at, demand, dict(decision["replicas"]),
                               dict(status.get("pools") or {}),
                               dict(status["engine"]["memory"]), status))


class Loop:
    def __init__(self, cluster: PykubeCluster, api_url: str, kubeconfig: Path,
                 namespace: str, service: dict[str, Any], sd_dir: Path, log_dir: Path) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.service = service
        self.name = service["metadata"]["name"]
        pools = service["spec"]["pools"]
        self.runner = PodRunner(cluster, namespace, sd_dir / f"{namespace}.json", log_dir,
                                lambda _service, pool: int(pools[pool]["throughput"]))
        self.operator = OperatorProcess(namespace, kubeconfig, log_dir / "operator.log")
        self.recorder = TickRecorder(api_url, namespace, self.name)

    def start(self) -> Loop:
        self.runner.start()
        self.recorder.start()
        # The object first: kopf serves only namespaces it has seen exist, and the
        # emulator knows a namespace by the objects in it.
        self.cluster.create(TTSSERVICES, self.namespace, self.service)
        self.operator.start()
        self.operator.wait_alive()
        return self

    def stop(self) -> None:
        self.operator.stop()
        self.recorder.stop()
        self.runner.stop()

    def status(self, name: str | None = None) -> dict[str, Any]:
        obj = self.cluster.get(TTSSERVICES, self.namespace, name or self.name)
        return dict((obj or {}).get("status") or {})

    def throughput(self, pool: str) -> float:
        return float(self.service["spec"]["pools"][pool]["throughput"])

    def ready_capacity(self, counts: dict[str, int]) -> float:
        """What the Ready workers serve behind the round-robin Service, in chars/s."""
        used = [p for p, n in counts.items() if n > 0]
        if not used:
            return 0.0
        return sum(counts[p] for p in used) * min(self.throughput(p) for p in used)
