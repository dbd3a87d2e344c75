"""The operator at scale on a real API server: N TTSServices, the operator on one core.

For N = 50, 200, 500, on a fresh local cluster (upstream kube-apiserver, etcd,
controller-manager, scheduler and kwok, free to use both cores) with the chart
installed by helm: N TTSServices (a gpu and a cpu pool each, the default 15 s interval)
whose load series a real Prometheus scrapes; then `elastic-tts run` under the chart's
ServiceAccount token, pinned to the first core, creates every service's children and
ticks them. Once every service has been decided at least once and its children are
all in place, and a settling minute has passed, three intervals are measured:

- ticks per interval against N: every service decided once per interval means the round
  fits (the daemons tick independently, so there is no single round to time);
- the mean and p99 tick wall time, from the operator's own histogram;
- operator CPU seconds per interval (from /proc; one core gives at most 15 s) and RSS;
- API requests per tick, counted by the API server itself (its audit log, the operator's
  ServiceAccount only), and by verb.

Goal: 500 services within their 15 s interval on one core, RSS <= 200 MB.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import yaml

from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.nodes import G4DN_12XLARGE, M5_4XLARGE, NodePool
from elastic_tts_dev.operator import OperatorProcess
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import CPU, GPU, tts

ROOT = Path(__file__).resolve().parents[1]
SIZES = (50, 200, 500)
INTERVAL = 15.0
MEASURED = 3  # intervals
OPERATOR_CORE = 0
SETTLE = 60.0  # after the last first decision: kopf's create handlers finish meanwhile
CHART = ROOT / "charts" / "elastic-tts"
NAMESPACE = "bench"
USER = "system:serviceaccount:elastic-tts:elastic-tts"
BUCKET = re.compile(r'elastic_tts_reconcile_duration_seconds_bucket\{le="([^"]+)",step="tick"\}'
                    r" ([0-9.e+]+)")
SUM = re.compile(r'elastic_tts_reconcile_duration_seconds_sum\{step="tick"\} ([0-9.e+]+)')


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


def tick_histogram(operator: OperatorProcess) -> tuple[dict[float, float], float]:
    """The tick duration histogram's cumulative buckets, and its sum (seconds)."""
    with urllib.request.urlopen(operator.metrics_url, timeout=10) as answer:
        text = answer.read().decode()
    found = SUM.search(text)
    return ({float(le): float(count) for le, count in BUCKET.findall(text)},
            float(found.group(1)) if found else 0.0)


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    counts = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
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


def requests_by_verb(cluster: LocalCluster, since: datetime, until: datetime
                     ) -> collections.Counter[str]:
    verbs: collections.Counter[str] = collections.Counter()
    for event in cluster.audit_events(user=USER):
        at = datetime.fromisoformat(event["requestReceivedTimestamp"])
        if since <= at < until:
            ref = event.get("objectRef") or {}
            verbs[f"{event['verb']} {ref.get('resource', '?')}"
                  f"{'/' + ref['subresource'] if ref.get('subresource') else ''}"] += 1
    return verbs


def run_size(n: int, prometheus: Prometheus, exporter: Exporter, work: Path) -> dict[str, float]:
    pools = [NodePool("cpu", M5_4XLARGE, count=2, max_pods=2000),
             NodePool("gpu", G4DN_12XLARGE, count=2)]
    with LocalCluster(pools=pools, gateway_api=False, workdir=work / f"cluster-{n}") as cluster:
        cluster.helm("install", "elastic-tts", str(CHART), "-n", "elastic-tts",
                     "--create-namespace", "--wait", "--timeout", "120s")
        kubeconfig = cluster.token_kubeconfig("elastic-tts", "elastic-tts", work / f"op-{n}")
        cluster.create_namespace(NAMESPACE)
        services = []
        for i in range(n):
            name = f"svc-{i:03d}"
            exporter.set_load(name, "cpu", 5 + (i % 5) * 5)  # 1-2 cpu replicas each
            body = tts(name, prometheus.url, pools={"gpu": GPU, "cpu": CPU})
            body["spec"]["scaling"] = {"prometheus": {"url": prometheus.url}}
            services.append(body)
        cluster.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump_all(services),
                        timeout=300)
        started = time.monotonic()
        operator = OperatorProcess(kubeconfig, work / f"operator-{n}.log",
                                   namespaces=[NAMESPACE]).start(timeout=120)
        pin(operator.pid, OPERATOR_CORE)
        try:
            for _ in range(120):  # bounded: 10 minutes
                if decided(cluster) >= n:
                    break
                time.sleep(5)
            else:
                raise RuntimeError(f"only {decided(cluster)} of {n} services decided in 10 min")
            ready_in = time.monotonic() - started
            time.sleep(SETTLE)
            since = datetime.now().astimezone()
            cpu0, (hist0, sum0) = cpu_seconds(operator.pid), tick_histogram(operator)
            peak_rss = 0.0
            end = time.monotonic() + MEASURED * INTERVAL
            while time.monotonic() < end:
                peak_rss = max(peak_rss, rss_mb(operator.pid))
                time.sleep(1)
            cpu1, (hist1, sum1) = cpu_seconds(operator.pid), tick_histogram(operator)
            until = datetime.now().astimezone()
            time.sleep(2)  # the audit log is written as requests complete
            verbs = requests_by_verb(cluster, since, until)
        finally:
            operator.stop()
        ticks = hist1[float("inf")] - hist0.get(float("inf"), 0.0)
        return {
            "ready_s": ready_in, "ticks_per_interval": ticks / MEASURED,
            "cpu_per_interval": (cpu1 - cpu0) / MEASURED, "rss_mb": peak_rss,
            "requests_per_tick": sum(verbs.values()) / ticks if ticks else float("nan"),
            "p50_ms": quantile(hist0, hist1, 0.5) * 1000,
            "p99_ms": quantile(hist0, hist1, 0.99) * 1000,
            "mean_ms": (sum1 - sum0) / ticks * 1000 if ticks else float("nan"),
            "verbs": " ".join(f"{k}={v / ticks:.2f}" for k, v in verbs.most_common(6)),
        }


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    exporter = Exporter(NAMESPACE)
    prometheus = Prometheus(exporter.port)
    print("operator at scale: elastic-tts run (pinned to one core) against a real API server "
          "(local cluster, unpinned), real Prometheus", flush=True)
    print(f"{'services':>8} {'ready s':>8} {'ticks/15s':>10} {'tick mean':>10} {'tick p50':>9} "
          f"{'tick p99':>9} "
          f"{'CPU s/15s':>10} {'RSS MB':>7} {'req/tick':>9}  on time  CPU<15s  RSS<=200",
          flush=True)
    sizes = [int(a) for a in sys.argv[1:]] or SIZES  # e.g. `bench_operator.py 500`
    try:
        for n in sizes:
            r = run_size(n, prometheus, exporter, work)

            def verdict(met: bool) -> str:
                return "ok" if met else "MISSED"

            print(f"{n:>8} {r['ready_s']:>8.0f} {r['ticks_per_interval']:>10.1f} "
                  f"{r['mean_ms']:>8.0f}ms {r['p50_ms']:>7.0f}ms {r['p99_ms']:>7.0f}ms "
                  f"{r['cpu_per_interval']:>10.2f} "
                  f"{r['rss_mb']:>7.1f} {r['requests_per_tick']:>9.2f}  "
                  f"{verdict(r['ticks_per_interval'] >= 0.95 * n):>7}  "
                  f"{verdict(r['cpu_per_interval'] < INTERVAL):>7}  "
                  f"{verdict(r['rss_mb'] <= 200):>8}", flush=True)
            print(f"{'':>8} requests per tick by verb: {r['verbs']}", flush=True)
    finally:
        prometheus.close()
        exporter.close()
    print("ticks/15s: services decided per interval (N means every one on time); tick "
          "p50/p99: histogram bucket bounds;\nready s: from the operator's start until "
          "every service had its first decision (children created meanwhile)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
