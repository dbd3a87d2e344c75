"""The kubelet of the e2e tier's nodes: real worker processes for the pods bound there.

kwok plays the kubelet for every node annotated ``kwok.x-k8s.io/node: fake``. The e2e
tier's node pools are ``runtime="process"`` pools, whose nodes kwok leaves alone; this is
their kubelet, and the one stand-in for a container runtime in the tests. Everything
else — the API server, the scheduler, the Deployment and ReplicaSet controllers, the
EndpointSlice controller, eviction, garbage and pod collection — is the real thing.

What it does, as a kubelet does:
- **Nodes.** `register(pool, count)` creates the Node objects (capacity from the
  instance type, Ready), then it renews each node's Lease in ``kube-node-lease`` and its
  Ready heartbeat every `HEARTBEAT` seconds, so the node lifecycle controller keeps them.
  A Node that is deleted is an instance that is gone: its workers are SIGKILLed at once.
- **Pods bound to its nodes.** Each gets a pod IP ``10.250.x.y`` and, as its network
  namespace, the loopback address ``127.250.x.y`` (Linux routes all of 127/8 to ``lo``),
  where the worker binds the container's declared ports. The API server refuses loopback
  addresses in EndpointSlices, so pod IPs cannot be loopback ones; `reach` is the single
  translation (the first octet), and Prometheus' relabelling and the e2e client apply it.
  The container's environment is resolved (values, ``fieldRef``) over the image's own
  (``TTS_BIND=0.0.0.0:8080``), a ``0.0.0.0`` bind meaning the pod's address, and
  ``elastic-tts-worker serve`` starts with it. The startup probe, then the readiness
  probe, run with the container's own period and thresholds (httpGet on its port); the
  pod's status says Running, its IP, its container and Ready as the probes find it
  (strategic merge, so conditions others wrote, such as DisruptionTarget, stay).
- **Deletion.** When a pod's deletion starts (scale-down, eviction, ``kubectl delete``),
  the container's preStop hook is run (its exec command), then SIGTERM, then SIGKILL
  when the grace period ends; the final status is written and the pod deleted with a
  grace of 0, as the kubelet does. A pod that vanishes first (forced deletion) loses its
  worker at once.

Not done: liveness probes (no scenario needs a hung worker restarted); volumes, init
containers and resource limits (nothing here enforces them). A container that exits on
its own is restarted (restartPolicy Always) and recorded in `errors`.

The worker runs espeak-ng behind `espeak_at_speed.sh`, which serialises syntheses and
holds each for characters / chars-per-second, so that a replica serves at the speed of
its node pool (`speeds`, characters per second per replica).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pykube
import requests

from elastic_tts_dev.nodes import NodePool
from elastic_tts_dev.processes import Child

REPO = Path(__file__).resolve().parents[2]
ESPEAK_AT_SPEED = Path(__file__).with_name("espeak_at_speed.sh")
POLL = 0.25  # seconds between looks at the pods
HEARTBEAT = 10.0  # the kubelet's default node status update / lease renew interval
LEASE_SECONDS = 40
POD_NETWORK = "10.250"  # pod IPs 10.250.x.y; their loopback twins are 127.250.x.y
# The parts of the worker image's environment that matter here (worker/Dockerfile.*).
IMAGE_ENV = {"TTS_BIND": "0.0.0.0:8080", "PYTHONUNBUFFERED": "1"}
# Only what makes a replica of the e2e tier: its speed and a fresh engine per request.
TEST_ENV = {"TTS_CACHE_ENTRIES": "0", "TTS_DRAIN_LINGER": "0.5", "LC_ALL": "C.UTF-8"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
JSON = {"Content-Type": "application/json"}
# From a random place: every test session on the machine allocates from this range, and
# two that both started at 1 took the same addresses (one worker's bind then failed).
_addresses = itertools.count(1 + secrets.randbelow(60000))
_addresses_lock = threading.Lock()


def reach(address: str) -> str:
    """Where a pod IP of these nodes is reached from this machine: its loopback twin."""
    if address.startswith(f"{POD_NETWORK}."):
        return "127." + address.split(".", 1)[1]
    return address


def now_rfc3339(micro: bool = False) -> str:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _free_on(host: str, ports: Sequence[int]) -> bool:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def allocate_address(ports: Sequence[int]) -> str:
    """A pod IP whose loopback twin has every port free (another test on this machine
    could be using one)."""
    with _addresses_lock:
        for _ in range(60000):
            n = next(_addresses)
            ip = f"{POD_NETWORK}.{n // 250 % 250}.{n % 250 + 1}"
            if _free_on(reach(ip), ports):
                return ip
    raise RuntimeError("no free pod address left in 10.250.0.0/16")


@dataclass
class Probe:
    """One httpGet probe of a container, with the kubelet's defaults."""

    path: str
    port: int
    period: float = 10.0
    failure_threshold: int = 3
    success_threshold: int = 1
    timeout: float = 1.0
    next_at: float = 0.0
    failures: int = 0
    successes: int = 0

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None, ports: Mapping[str, int]) -> Probe | None:
        if not spec or "httpGet" not in spec:
            return None
        get = spec["httpGet"]
        port = get.get("port")
        number = ports[port] if isinstance(port, str) else int(port)
        return cls(str(get.get("path") or "/"), number,
                   period=float(spec.get("periodSeconds", 10)),
                   failure_threshold=int(spec.get("failureThreshold", 3)),
                   success_threshold=int(spec.get("successThreshold", 1)),
                   timeout=float(spec.get("timeoutSeconds", 1)),
                   next_at=time.monotonic() + float(spec.get("initialDelaySeconds", 0)))

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def run(self, host: str, now: float) -> bool | None:
        """Probe once; True/False when the threshold is crossed, None when undecided."""
        self.next_at = now + self.period
        try:
            answer = requests.get(f"http://{host}:{self.port}{self.path}",
                                  timeout=self.timeout,
                                  headers={"User-Agent": "kube-probe/1.36"})
            ok = 200 <= answer.status_code < 400
        except requests.RequestException:
            ok = False
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            return True if self.successes >= self.success_threshold else None
        self.failures, self.successes = self.failures + 1, 0
        return False if self.failures >= self.failure_threshold else None


@dataclass
class RunningPod:
    """A pod this kubelet runs: its worker, its probes, what it last reported."""

    uid: str
    name: str
    node: str
    labels: dict[str, str]
    ip: str
    container: dict[str, Any]
    env: dict[str, str]
    directory: Path
    worker: Child | None = None
    started_at: float = 0.0  # time.monotonic() of the container start
    start_time: str = ""  # the pod's status.startTime
    restarts: int = 0
    startup: Probe | None = None
    readiness: Probe | None = None
    started: bool = False  # the startup probe succeeded
    ready: bool = False
    reported: tuple[bool, bool, int] | None = None  # (started, ready, restarts) written
    terminating: bool = False
    exit_code: int | None = None
    cold_start: float | None = None  # container start to first Ready, seconds

    @property
    def host(self) -> str:
        return reach(self.ip)

    @property
    def pool(self) -> str:
        return self.labels.get("elastictts.io/pool", "")


@dataclass
class KubeletRecord:
    cold_starts: list[float] = field(default_factory=list)
    exits: dict[str, int | None] = field(default_factory=dict)  # pod -> worker exit code
    errors: list[str] = field(default_factory=list)
    pools: dict[str, str] = field(default_factory=dict)  # pod IP -> its pool label
    # (time.time(), pool) of each pod's first status that says Running: where the pod's
    # Pending ends, as the operator sees it
    running: list[tuple[float, str]] = field(default_factory=list)


class ProcessKubelet:
    def __init__(self, api: pykube.HTTPClient, namespace: str, log_dir: Path,
                 speeds: Mapping[str, float]) -> None:
        """Runs the pods of `namespace` bound to its own nodes; `speeds` maps each node
        pool's name to the characters per second one replica serves there."""
        self.api = api
        self.namespace = namespace
        self.log_dir = log_dir
        self.speeds = dict(speeds)
        self.nodes: dict[str, NodePool] = {}  # its nodes, by name
        self.pods: dict[str, RunningPod] = {}  # by uid
        self.record = KubeletRecord()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._heartbeat_at = 0.0
        self._thread = threading.Thread(target=self._loop, name=f"kubelet-{namespace}",
                                        daemon=True)

    # -- the API ------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, body: Any = None,
                 headers: Mapping[str, str] | None = None, version: str = "v1",
                 namespace: str | None = None, params: Mapping[str, str] | None = None
                 ) -> requests.Response:
        response: requests.Response = self.api.request(
            method, url=path, version=version, namespace=namespace,
            data=json.dumps(body) if body is not None else None,
            headers=dict(headers or JSON), params=params, timeout=10)
        return response

    def _ok(self, response: requests.Response, *allowed: int) -> requests.Response:
        if response.status_code >= 400 and response.status_code not in allowed:
            raise RuntimeError(f"{response.request.method} {response.url}: "
                               f"{response.status_code} {response.text[:300]}")
        return response

    # -- nodes --------------------------------------------------------------------------

    def register(self, pool: NodePool, count: int) -> list[str]:
        """`count` new nodes of `pool` (a runtime="process" pool), Ready."""
        if pool.runtime != "process":
            raise ValueError(f"pool {pool.name} is kwok's (runtime={pool.runtime!r})")
        names = pool.node_names(count, unique=True)
        for index, name in enumerate(names):
            node = pool.node(name, index)
            node["status"]["conditions"] = self._node_conditions()
            node["status"]["addresses"] = [{"type": "InternalIP", "address": "127.0.0.1"},
                                           {"type": "Hostname", "address": name}]
            node["status"]["nodeInfo"] = {"kubeletVersion": "v1.36.0-e2e-process",
                                          "containerRuntimeVersion": "process://e2e"}
            self._ok(self._request("POST", "nodes", body=node))
            with self._lock:
                self.nodes[name] = pool
            self._renew(name)
        return names

    def _node_conditions(self) -> list[dict[str, str]]:
        stamp = now_rfc3339()
        quiet = [("MemoryPressure", "KubeletHasSufficientMemory"),
                 ("DiskPressure", "KubeletHasNoDiskPressure"),
                 ("PIDPressure", "KubeletHasSufficientPID")]
        conditions = [{"type": kind, "status": "False", "reason": reason,
                       "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}
                      for kind, reason in quiet]
        conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                           "message": "the e2e process kubelet is posting ready status",
                           "lastHeartbeatTime": stamp, "lastTransitionTime": stamp})
        return conditions

    def _renew(self, name: str) -> bool:
        """Renew the node's Lease and Ready heartbeat; False when the Node is gone."""
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS,
                          "renewTime": now_rfc3339(micro=True)}}
        answer = self._request("PATCH", f"leases/{name}", version="coordination.k8s.io/v1",
                               namespace="kube-node-lease", body=lease,
                               headers={"Content-Type": "application/merge-patch+json"})
        if answer.status_code == 404:
            self._ok(self._request("POST", "leases", version="coordination.k8s.io/v1",
                                   namespace="kube-node-lease", body=lease), 409)
        status = self._request("PATCH", f"nodes/{name}/status", headers=STRATEGIC,
                               body={"status": {"conditions": [
                                   {"type": "Ready", "status": "True",
                                    "reason": "KubeletReady",
                                    "lastHeartbeatTime": now_rfc3339()}]}})
        if status.status_code == 404:
            return False
        self._ok(status)
        return True

    def _heartbeat(self) -> None:
        with self._lock:
            names = list(self.nodes)
        for name in names:
            if not self._renew(name):
                self._node_gone(name)

    def _node_gone(self, name: str) -> None:
        """The instance is gone: its processes die with it."""
        with self._lock:
            self.nodes.pop(name, None)
            for pod in list(self.pods.values()):
                if pod.node == name:
                    self._kill(pod)
                    self.pods.pop(pod.uid, None)

    # -- the loop -----------------------------------------------------------------------

    def start(self) -> ProcessKubelet:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop and every worker (SIGTERM, then SIGKILL)."""
        self._stop.set()
        self._thread.join(15)
        with self._lock:
            for pod in self.pods.values():
                if pod.worker is not None:
                    pod.worker.signal(signal.SIGTERM)
            for pod in self.pods.values():
                self._kill(pod, grace=20)
            self.pods.clear()

    def delete_nodes(self) -> None:
        """Delete its Node objects (teardown): nothing runs there any more."""
        with self._lock:
            names = list(self.nodes)
        for name in names:
            self._ok(self._request("DELETE", f"nodes/{name}"), 404)
            self._node_gone(name)

    def _loop(self) -> None:
        for _ in range(10**7):  # bounded; the test's teardown stops it long before
            if self._stop.wait(POLL):
                return
            try:
                self.step()
            except Exception as exc:  # the API under faults or teardown: the next round
                self.record.errors.append(f"step: {exc!r}"[:300])

    def step(self) -> None:
        now = time.monotonic()
        if now - self._heartbeat_at >= HEARTBEAT:
            self._heartbeat_at = now
            self._heartbeat()
        listed = self._ok(self._request("GET", "pods", namespace=self.namespace)).json()
        seen: set[str] = set()
        with self._lock:
            for pod in listed.get("items") or []:
                node = (pod.get("spec") or {}).get("nodeName")
                if node not in self.nodes:
                    continue
                uid = pod["metadata"]["uid"]
                seen.add(uid)
                running = self.pods.get(uid)
                if running is None and not pod["metadata"].get("deletionTimestamp"):
                    running = self._start(pod)
                if running is None:
                    continue
                if pod["metadata"].get("deletionTimestamp") and not running.terminating:
                    self._terminate(running, pod)
                self._sync(running)
            for uid, running in list(self.pods.items()):
                if uid not in seen and not running.terminating:
                    self._kill(running)  # force-deleted: its container goes at once
                    self.pods.pop(uid, None)

    # -- one pod ------------------------------------------------------------------------

    def _start(self, pod: dict[str, Any]) -> RunningPod | None:
        meta, spec = pod["metadata"], pod["spec"]
        container = spec["containers"][0]
        ports = {p["name"]: int(p["containerPort"]) for p in container.get("ports") or []
                 if p.get("name")}
        ip = allocate_address(sorted(set(ports.values())))
        directory = Path(tempfile.mkdtemp(prefix=f"{meta['name']}-", dir=self.log_dir))
        running = RunningPod(meta["uid"], meta["name"], spec["nodeName"],
                             dict(meta.get("labels") or {}), ip, container, {}, directory,
                             start_time=now_rfc3339())
        running.env = self._environment(pod, running)
        self.pods[running.uid] = running
        self.record.pools[ip] = running.pool
        self._launch(running, ports)
        return running

    def _environment(self, pod: dict[str, Any], running: RunningPod) -> dict[str, str]:
        host_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TTS_", "E2E_", "PROMETHEUS_", "KUBECONFIG"))}
        env = {**host_env, **IMAGE_ENV}
        fields = {"metadata.name": pod["metadata"]["name"],
                  "metadata.namespace": pod["metadata"]["namespace"],
                  "metadata.uid": pod["metadata"]["uid"],
                  "spec.nodeName": pod["spec"]["nodeName"],
                  "status.podIP": running.ip, "status.hostIP": "127.0.0.1"}
        for item in running.container.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
            elif "fieldRef" in (item.get("valueFrom") or {}):
                path = item["valueFrom"]["fieldRef"]["fieldPath"]
                env[item["name"]] = fields.get(path, "")
        for name, value in list(env.items()):
            if name.endswith("_BIND"):  # 0.0.0.0 in a pod's network namespace: its address
                host, _, port = value.rpartition(":")
                if host in ("", "0.0.0.0", "*", "[::]"):
                    env[name] = f"{running.host}:{port}"
        pool = self.nodes[running.node]
        env.update(TEST_ENV)
        env.update({
            "PROMETHEUS_MULTIPROC_DIR": str(running.directory / "prom"),
            "TTS_ESPEAK_BIN": str(ESPEAK_AT_SPEED),
            "E2E_CHARS_PER_SECOND": str(int(self.speeds[pool.name])),
            "E2E_REPLICA_LOCK": str(running.directory / "engine.lock"),
            "PYTHONPATH": os.pathsep.join([str(REPO / "worker"), env.get("PYTHONPATH", "")]),
        })
        return env

    def _launch(self, running: RunningPod, ports: Mapping[str, int]) -> None:
        prom = running.directory / "prom"
        shutil.rmtree(prom, ignore_errors=True)  # as the image's entrypoint empties it
        prom.mkdir()
        running.worker = Child(
            f"worker {running.name}",
            [sys.executable, "-m", "tts_worker.cli", "serve"],
            running.directory / "worker.log", env=running.env)
        running.started_at = time.monotonic()
        running.startup = Probe.of(running.container.get("startupProbe"), ports)
        running.readiness = Probe.of(running.container.get("readinessProbe"), ports)
        running.started = running.startup is None
        running.ready = False

    def _sync(self, running: RunningPod) -> None:
        """Probe what is due, restart a container that exited, and write the status
        when what it says changed."""
        now = time.monotonic()
        worker = running.worker
        if running.terminating or worker is None:
            return
        if not worker.alive():
            self.record.errors.append(f"worker {running.name} exited with "
                                      f"{worker.process.returncode}: {worker.tail(5)}")
            running.restarts += 1
            ports = {p["name"]: int(p["containerPort"])
                     for p in running.container.get("ports") or [] if p.get("name")}
            self._launch(running, ports)
        elif not running.started and running.startup and running.startup.due(now):
            verdict = running.startup.run(running.host, now)
            if verdict is True:
                running.started = True
            elif verdict is False:  # the kubelet restarts a container that never started
                self.record.errors.append(f"worker {running.name} failed its startup probe")
                worker.kill()
        elif running.started and running.readiness and running.readiness.due(now):
            verdict = running.readiness.run(running.host, now)
            if verdict is not None and verdict != running.ready:
                running.ready = verdict
                if verdict and running.cold_start is None:
                    running.cold_start = now - running.started_at
                    self.record.cold_starts.append(running.cold_start)
        state = (running.started, running.ready, running.restarts)
        if state != running.reported:
            self._write_status(running)

    def _write_status(self, running: RunningPod, exit_code: int | None = None) -> None:
        stamp = now_rfc3339()
        ready = "True" if running.ready and exit_code is None else "False"
        container: dict[str, Any] = {
            "name": running.container["name"], "image": running.container.get("image", ""),
            "imageID": "",
            "containerID": f"process://{running.worker.pid if running.worker else 0}",
            "ready": ready == "True", "restartCount": running.restarts,
            "started": running.started and exit_code is None,
        }
        if exit_code is None:
            container["state"] = {"running": {"startedAt": running.start_time}}
        else:
            container["state"] = {"terminated": {
                "exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": running.start_time, "finishedAt": stamp}}
        status = {
            "phase": "Running" if exit_code is None else
                     ("Succeeded" if exit_code == 0 else "Failed"),
            "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": running.ip, "podIPs": [{"ip": running.ip}],
            "startTime": running.start_time,
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": stamp},
                {"type": "Ready", "status": ready, "lastTransitionTime": stamp},
            ],
            "containerStatuses": [container],
        }
        answer = self._request("PATCH", f"pods/{running.name}/status", namespace=self.namespace,
                               headers=STRATEGIC, body={"status": status})
        if answer.status_code < 400:
            if running.reported is None and exit_code is None:
                self.record.running.append((time.time(), running.pool))
            running.reported = (running.started, running.ready, running.restarts)
        elif answer.status_code != 404:  # gone is fine; anything else is retried next round
            self.record.errors.append(f"status of {running.name}: {answer.status_code}")

    # -- deletion -----------------------------------------------------------------------

    def _terminate(self, running: RunningPod, pod: dict[str, Any]) -> None:
        """The pod's deletion started: preStop, SIGTERM, SIGKILL at the grace period's
        end, then the final status and the deletion with grace 0 (a thread per pod)."""
        running.terminating = True
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds")
                      or pod["spec"].get("terminationGracePeriodSeconds") or 30)
        threading.Thread(target=self._stop_container, args=(running, grace),
                         name=f"stop-{running.name}", daemon=True).start()

    def _stop_container(self, running: RunningPod, grace: float) -> None:
        deadline = time.monotonic() + grace
        worker = running.worker
        hook = ((running.container.get("lifecycle") or {}).get("preStop") or {}).get("exec")
        if hook and worker is not None and worker.alive() and grace > 0:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                subprocess.run(hook["command"], env=running.env, timeout=grace,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        code: int | None = None
        if worker is not None:
            worker.signal(signal.SIGTERM)
            try:
                code = worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                code = worker.process.returncode
        self.record.exits[running.name] = code
        with contextlib.suppress(Exception):  # the pod may be gone already
            self._write_status(running, exit_code=code if code is not None else 137)
        with contextlib.suppress(Exception):
            self._request("DELETE", f"pods/{running.name}", namespace=self.namespace,
                          body={"apiVersion": "v1", "kind": "DeleteOptions",
                                "gracePeriodSeconds": 0,
                                "preconditions": {"uid": running.uid}})
        with self._lock:
            self.pods.pop(running.uid, None)

    def _kill(self, running: RunningPod, grace: float = 0.0) -> None:
        worker = running.worker
        if worker is not None:
            if grace > 0 and worker.alive():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(grace)
            worker.kill()
            self.record.exits.setdefault(running.name, worker.process.returncode)

    # -- what the tests read ------------------------------------------------------------

    def workers(self) -> list[tuple[str, Child]]:
        with self._lock:
            return [(p.name, p.worker) for p in self.pods.values() if p.worker is not None]

    def worker_log(self, pod: str) -> str:
        with self._lock:
            for running in self.pods.values():
                if running.name == pod and running.worker is not None:
                    return running.worker.tail(200)
        return ""
