"""The operator at scale on a real API server: N TTSServices, the operator on one core.

For N = 50, 200, 500, on a fresh local cluster (upstream kube-apiserver, etcd,
controller-manager, scheduler and kwok, free to use both cores) with the chart
installed by helm: N TTSServices (a gpu and a cpu pool each, the default 15 s interval)
whose load series a real Prometheus scrapes; then `elastic-tts run` under the chart's
ServiceAccount token, pinned to the first core, creates every service's children and
ticks them. Two phases are measured, three intervals each:

- steady: once every service has been decided and the engine has settled (an interval
  with scale writes for fewer than 2 % of the services, or 12 minutes, whichever comes
  first: its rate windows, burst history and scale-down windows fill meanwhile);
- shift: every service's load rises by half at once, the worst case of a shared diurnal
  curve, and the three intervals that follow are measured while the engine scales up.

For each: ticks per interval against N (every service decided once per interval means
the round fits; the daemons tick independently, so there is no single round to time);
the mean and p99 tick wall time from the operator's own histogram (a tick's wait for a
tick thread included); operator CPU seconds per interval (from /proc; one core gives at
most 15 s) and its peak RSS; API requests per tick, counted by the API server itself
(its audit log, the operator's ServiceAccount only), and by verb.

The operator runs from a venv with the image's packages (operator/image-requirements.txt,
`elastic_tts_dev.image_env`), not from the dev venv, whose extra packages it would load.

Goal: 500 services within their 15 s interval on one core, RSS <= 200 MB.
"""

from __future__ import annotations

import collections
import contextlib
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.image_env import image_environment
from elastic_tts_dev.nodes import G4DN_12XLARGE, M5_4XLARGE, NodePool
from elastic_tts_dev.operator import OperatorProcess
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import CPU, GPU, tts

ROOT = Path(__file__).resolve().parents[1]
SIZES = (50, 200, 500)
INTERVAL = 15.0
MEASURED = 3  # intervals per phase
OPERATOR_CORE = 0
SETTLED_SHARE = 0.02  # an interval with scale writes for fewer services than this is steady
SETTLE_LIMIT = 720.0  # seconds: measure anyway after this long, and say so
SHIFT = 1.5  # every service's load, times this, at once
CHART = ROOT / "charts" / "elastic-tts"
NAMESPACE = "bench"
USER = "system:serviceaccount:elastic-tts:elastic-tts"


def pin(pid: int, core: int) -> None:
    """Every thread of a process onto one core (new threads inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), {core})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class OperatorMetrics:
    """What one scrape of the operator's /metrics says about its ticks and writes."""

    buckets: dict[float, float]  # the tick histogram's cumulative buckets
    tick_seconds: float  # the histogram's sum
    scale_changes: float  # replica changes the executor applied, every service

    @property
    def ticks(self) -> float:
        return self.buckets.get(float("inf"), 0.0)


def scrape(operator: OperatorProcess) -> OperatorMetrics:
    with urllib.request.urlopen(operator.metrics_url, timeout=10) as answer:
        text = answer.read().decode()
    buckets: dict[float, float] = {}
    tick_seconds = changes = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.name == "elastic_tts_reconcile_duration_seconds" \
                    and sample.labels.get("step") == "tick":
                if sample.name.endswith("_bucket"):
                    buckets[float(sample.labels["le"])] = sample.value
                elif sample.name.endswith("_sum"):
                    tick_seconds = sample.value
            elif sample.name == "elastic_tts_scale_changes_total":
                changes += sample.value
    return OperatorMetrics(buckets, tick_seconds, changes)


def quantile(before: OperatorMetrics, after: OperatorMetrics, q: float) -> float:
    counts = sorted((le, count - before.buckets.get(le, 0.0))
                    for le, count in after.buckets.items())
    total = counts[-1][1] if counts else 0
    for le, count in counts:
        if total and count >= q * total:
            return le
    return float("inf")


def decided(cluster: LocalCluster) -> int:
    listed = yaml.safe_load(cluster.kubectl("get", "tts", "-n", NAMESPACE, "-o", "yaml",
                                            timeout=120).stdout)
    return sum(1 for item in listed["items"]
               if (item.get("status") or {}).get("lastDecision"))


def operator_requests(cluster: LocalCluster, since: datetime, until: datetime
                      ) -> tuple[collections.Counter[str], list[float]]:
    """The operator's requests the API server answered between two instants: a count by
    verb, and how long the server took over each (received to answered, seconds), which
    says whether a slow tick waited on the server or on the operator itself."""
    verbs: collections.Counter[str] = collections.Counter()
    served: list[float] = []
    for event in cluster.audit_events(user=USER):
        at = datetime.fromisoformat(event["requestReceivedTimestamp"])
        if since <= at < until:
            ref = event.get("objectRef") or {}
            verbs[f"{event['verb']} {ref.get('resource', '?')}"
                  f"{'/' + ref['subresource'] if ref.get('subresource') else ''}"] += 1
            if event.get("stage") == "ResponseComplete" and event["verb"] != "watch":
                served.append((datetime.fromisoformat(event["stageTimestamp"]) - at)
                              .total_seconds())
    return verbs, served


def settle(operator: OperatorProcess) -> tuple[float, bool]:
    """Wait, an interval at a time, until fewer than SETTLED_SHARE of the interval's ticks
    write a scale (per tick: a starved operator ticks less, and writes less per interval
    without having settled); bounded by SETTLE_LIMIT. Seconds waited, and whether it
    settled."""
    started = time.monotonic()
    before = scrape(operator)
    while time.monotonic() - started < SETTLE_LIMIT:
        time.sleep(INTERVAL)
        after = scrape(operator)
        ticks = after.ticks - before.ticks
        if ticks and after.scale_changes - before.scale_changes < SETTLED_SHARE * ticks:
            return time.monotonic() - started, True
        before = after
    return time.monotonic() - started, False


def measure(cluster: LocalCluster, operator: OperatorProcess) -> dict[str, float | str]:
    """Three intervals of the running operator: ticks, tick times, CPU, RSS, requests."""
    since = datetime.now().astimezone()
    servers = {child.name: child.process.pid for child in cluster.children}
    cpu0, m0 = cpu_seconds(operator.pid), scrape(operator)
    cluster0 = {name: cpu_seconds(pid) for name, pid in servers.items()}
    peak_rss = 0.0
    end = time.monotonic() + MEASURED * INTERVAL
    while time.monotonic() < end:
        peak_rss = max(peak_rss, rss_mb(operator.pid))
        time.sleep(1)
    cpu1, m1 = cpu_seconds(operator.pid), scrape(operator)
    cluster1 = {name: cpu_seconds(pid) for name, pid in servers.items()}
    until = datetime.now().astimezone()
    time.sleep(2)  # the audit log is written as requests complete
    verbs, served = operator_requests(cluster, since, until)
    ticks = m1.ticks - m0.ticks
    per_tick = (lambda count: count / ticks) if ticks else (lambda count: float("nan"))
    return {
        "ticks_per_interval": ticks / MEASURED,
        "cpu_per_interval": (cpu1 - cpu0) / MEASURED, "rss_mb": peak_rss,
        "requests_per_tick": per_tick(sum(verbs.values())),
        "scale_writes_per_tick": per_tick(m1.scale_changes - m0.scale_changes),
        "p50_ms": quantile(m0, m1, 0.5) * 1000,
        "p99_ms": quantile(m0, m1, 0.99) * 1000,
        "mean_ms": per_tick(m1.tick_seconds - m0.tick_seconds) * 1000,
        "apiserver_cpu": (cluster1["kube-apiserver"] - cluster0["kube-apiserver"]) / MEASURED,
        "cluster_cpu": sum(cluster1[n] - cluster0[n] for n in servers) / MEASURED,
        "server_p50_ms": statistics.median(served) * 1000 if served else float("nan"),
        "verbs": " ".join(f"{k}={per_tick(v):.2f}" for k, v in verbs.most_common(6)),
    }


def run_size(n: int, prometheus: Prometheus, exporter: Exporter, work: Path,
             command: list[str]) -> dict[str, dict[str, float | str]]:
    pools = [NodePool("cpu", M5_4XLARGE, count=2, max_pods=2000),
             NodePool("gpu", G4DN_12XLARGE, count=2)]
    loads = {f"svc-{i:03d}": 5.0 + (i % 5) * 5 for i in range(n)}  # 1-6 cpu replicas each
    with LocalCluster(pools=pools, gateway_api=False, workdir=work / f"cluster-{n}") as cluster:
        cluster.helm("install", "elastic-tts", str(CHART), "-n", "elastic-tts",
                     "--create-namespace", "--wait", "--timeout", "120s")
        kubeconfig = cluster.token_kubeconfig("elastic-tts", "elastic-tts", work / f"op-{n}")
        cluster.create_namespace(NAMESPACE)
        services = []
        for name, load in loads.items():
            exporter.set_load(name, "cpu", load)
            body = tts(name, prometheus.url, pools={"gpu": GPU, "cpu": CPU})
            body["spec"]["scaling"] = {"prometheus": {"url": prometheus.url}}
            services.append(body)
        cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump_all(services),
                        timeout=300)
        started = time.monotonic()
        operator = OperatorProcess(kubeconfig, work / f"operator-{n}.log",
                                   namespaces=[NAMESPACE], command=command
                                   ).start(timeout=120)
        pin(operator.pid, OPERATOR_CORE)
        try:
            for _ in range(120):  # bounded: 10 minutes
                if decided(cluster) >= n:
                    break
                time.sleep(5)
            else:
                raise RuntimeError(f"only {decided(cluster)} of {n} services decided in 10 min")
            ready_in = time.monotonic() - started
            settled_in, settled = settle(operator)
            steady = measure(cluster, operator)
            steady.update(ready_s=ready_in, settled_s=settled_in,
                          settled="yes" if settled else "NO")
            for name, load in loads.items():
                exporter.set_load(name, "cpu", load * SHIFT)
            shift = measure(cluster, operator)
        finally:
            operator.stop()
        return {"steady": steady, "shift": shift}


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    command = image_environment()
    exporter = Exporter(NAMESPACE)
    prometheus = Prometheus(exporter.port)
    print("operator at scale: elastic-tts run (pinned to one core) against a real API server "
          "(local cluster, unpinned), real Prometheus; the operator from the image's "
          "packages", flush=True)
    print(f"{'services':>8} {'phase':>6} {'ticks/15s':>10} {'tick mean':>10} {'tick p50':>9} "
          f"{'tick p99':>9} {'CPU s/15s':>10} {'RSS MB':>7} {'req/tick':>9} {'scale/tick':>10} "
          f"{'API p50':>8}"
          "  on time  CPU<15s  RSS<=200", flush=True)
    sizes = [int(a) for a in sys.argv[1:]] or SIZES  # e.g. `bench_operator.py 500`
    try:
        for n in sizes:
            phases = run_size(n, prometheus, exporter, work, command)

            def verdict(met: bool) -> str:
                return "ok" if met else "MISSED"

            for phase, r in phases.items():
                print(f"{n:>8} {phase:>6} {r['ticks_per_interval']:>10.1f} "
                      f"{r['mean_ms']:>8.0f}ms {r['p50_ms']:>7.0f}ms {r['p99_ms']:>7.0f}ms "
                      f"{r['cpu_per_interval']:>10.2f} {r['rss_mb']:>7.1f} "
                      f"{r['requests_per_tick']:>9.2f} {r['scale_writes_per_tick']:>10.2f} "
                      f"{r['server_p50_ms']:>6.0f}ms  "
                      f"{verdict(float(r['ticks_per_interval']) >= 0.95 * n):>7}  "
                      f"{verdict(float(r['cpu_per_interval']) < INTERVAL):>7}  "
                      f"{verdict(float(r['rss_mb']) <= 200):>8}", flush=True)
                print(f"{'':>15} requests per tick by verb: {r['verbs']}", flush=True)
                print(f"{'':>15} CPU s/15s of the API server {r['apiserver_cpu']:.2f}, of the "
                      f"whole cluster {r['cluster_cpu']:.2f} (it shares both cores)", flush=True)
            steady = phases["steady"]
            print(f"{'':>15} first decisions {steady['ready_s']:.0f} s after the start; "
                  f"settled {steady['settled_s']:.0f} s later (settled: {steady['settled']})",
                  flush=True)
    finally:
        prometheus.close()
        exporter.close()
    print("ticks/15s: services decided per interval (N means every one on time); tick "
          "p50/p99: histogram bucket bounds;\nAPI p50: the API server's own time per request "
          "(audit log); scale/tick: replica changes written per tick; "
          "steady: after the engine settled; shift: the three intervals after every "
          "service's load rose by half at once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
