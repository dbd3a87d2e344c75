"""Tick cost of the operator with N TTSServices against the KMock API server.

For N = 50, 200, 500: every service gets its children (2 Deployments with one Ready pod
each, Service, PDB) and load series in a real Prometheus; then one full round of ticks
runs, as the daemons would within one interval: observe (2 lists + 2 PromQL queries),
decide, apply, write status. Printed per N: median wall time and CPU time of one
service's tick, the round's total CPU (what must fit in one core per interval), and the
operator process's RSS (the emulator runs in its own process, and is not counted).

Goal: 500 services within a 15 s interval on one core, RSS <= 200 MB.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kopf

import elastic_tts.handlers  # noqa: F401  (the operator's full import footprint)
from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.adapters.prometheus import PrometheusLoadSource
from elastic_tts.policy import parse_spec
from elastic_tts.reconcile.children import ensure_children
from elastic_tts.reconcile.kinds import PODS, TTSSERVICES
from elastic_tts.reconcile.render import render_children
from elastic_tts.reconcile.tick import ServiceRef, Ticker, TickSettings
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import CPU, GPU, tts

ROOT = Path(__file__).resolve().parents[1]
SIZES = (50, 200, 500)
INTERVAL = 15.0
CONCURRENCY = 16


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "elastic_tts_dev.emulator"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def populate(cluster: PykubeCluster, ns: str, n: int, prom_url: str,
             exporter: Exporter) -> None:
    for i in range(n):
        name = f"svc-{i:03d}"
        exporter.set_load(name, "cpu", 10 + (i % 7) * 40, namespace=ns)
        owner = cluster.create(TTSSERVICES, ns, tts(name, prom_url, pools={"gpu": GPU,
                                                                          "cpu": CPU}))
        spec = parse_spec(owner)
        ensure_children(cluster, ns, name, render_children(name, spec),
                        lambda objs, o=owner: kopf.adopt(objs, owner=o))
        for pool in ("gpu", "cpu"):
            cluster.create(PODS, ns, {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{name}-{pool}-0",
                             "labels": {"elastictts.io/service": name,
                                        "elastictts.io/pool": pool}},
                "spec": {"nodeName": "node-1"},
                "status": {"phase": "Running",
                           "conditions": [{"type": "Ready", "status": "True"}]}})


def tick_one(ticker: Ticker, cluster: PykubeCluster, ns: str, name: str) -> None:
    body = cluster.get(TTSSERVICES, ns, name) or {}
    ref = ServiceRef(name, ns, body["metadata"].get("generation"))
    result = ticker.tick(ref, body["spec"], body.get("status") or {}, time.time(),
                         lambda objs, o=body: kopf.adopt(objs, owner=o))
    ticker.write_status(ref, body.get("status") or {}, result.status)


def one_round(ticker: Ticker, cluster: PykubeCluster, ns: str, n: int
              ) -> tuple[list[float], list[float]]:
    walls, cpus = [], []
    for i in range(n):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        tick_one(ticker, cluster, ns, f"svc-{i:03d}")
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.process_time() - cpu0)
    return walls, cpus


def concurrent_round(ticker: Ticker, cluster: PykubeCluster, ns: str, n: int) -> float:
    """Wall time of a round with the ticks overlapping, as kopf runs one daemon per
    service: what must fit in the interval."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        list(pool.map(lambda i: tick_one(ticker, cluster, ns, f"svc-{i:03d}"), range(n)))
    return time.perf_counter() - start


def main() -> int:
    exporter = Exporter("bench")
    prometheus = Prometheus(exporter.port)
    print("operator tick cost (KMock API server over HTTP, real Prometheus)")
    # One core for the operator, the other for the emulator, as the goal says "one core".
    os.sched_setaffinity(0, {0})
    print(f"{'services':>8} {'tick wall ms':>13} {'tick CPU ms':>12} {'round wall s':>13} "
          f"{'round CPU s':>12} {'concurrent s':>13} {'RSS MB':>7}  "
          f"operator CPU<{INTERVAL:.0f}s  wall<{INTERVAL:.0f}s  RSS<=200", flush=True)
    try:
        for n in SIZES:
            proc, url = start_emulator()
            os.sched_setaffinity(proc.pid, {1})
            with tempfile.TemporaryDirectory() as tmp:
                config = Path(tmp) / "config"
                config.write_text(
                    "apiVersion: v1\nkind: Config\ncurrent-context: e\n"
                    f"clusters: [{{name: e, cluster: {{server: '{url}'}}}}]\n"
                    "contexts: [{name: e, context: {cluster: e, user: u}}]\n"
                    "users: [{name: u, user: {token: t}}]\n")
                os.environ["KUBECONFIG"] = str(config)
                cluster = PykubeCluster.from_env()
                ns = f"bench-{n}"
                populate(cluster, ns, n, prometheus.url, exporter)
                time.sleep(3)  # a few scrapes, so the queries return series
                ticker = Ticker(cluster, PrometheusLoadSource(), TickSettings())
                one_round(ticker, cluster, ns, n)  # warm: first status write is the largest
                walls, cpus = one_round(ticker, cluster, ns, n)
                overlapped = concurrent_round(ticker, cluster, ns, n)
            proc.communicate("", timeout=30)
            wall, cpu = statistics.median(walls) * 1000, statistics.median(cpus) * 1000
            rss = rss_mb()
            def verdict(met: bool) -> str:
                return "ok" if met else "MISSED"

            print(f"{n:>8} {wall:>13.2f} {cpu:>12.2f} {sum(walls):>13.2f} {sum(cpus):>12.2f} "
                  f"{overlapped:>13.2f} {rss:>7.1f}  {verdict(sum(cpus) < INTERVAL):>15}"
                  f"  {verdict(overlapped < INTERVAL):>8}  {verdict(rss <= 200):>8}", flush=True)
    finally:
        prometheus.close()
        exporter.close()
    print("tick wall includes waiting for the emulator (its own process, on the other core); "
          "tick CPU is the operator's own work;\nconcurrent: the same round with "
          f"{CONCURRENCY} ticks in flight, as kopf's per-service daemons run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
