"""`make playground`: elastic-tts on a local cluster, with a compressed day of traffic.

What it starts, in the foreground, until Ctrl-C (or SIGTERM):
- the local cluster (`cluster.LocalCluster`: upstream etcd, kube-apiserver,
  kube-controller-manager, kube-scheduler, kwok) with its GPU on-demand, GPU spot and CPU
  node pools;
- the chart, installed by the built helm as the README's Install section says (its
  operator pod is a kwok pod: there is no container runtime here);
- the operator as a local `elastic-tts run --all-namespaces`, authenticated with a token
  for the chart's ServiceAccount, so the chart's RBAC applies;
- a Prometheus (the Debian binary) scraping a load driver that replays the simulator's
  built-in day as worker metrics: the day's characters and requests per second at day
  time ``start + wall seconds x speed`` (time compressed, rates as they are), split across
  the pools by the HTTPRoute's live weights, as the gateway would split the requests;
- `manifests/examples/full.yaml`, applied in the default namespace with two changes it
  prints: the Prometheus URL points at that Prometheus, and the schedule is dropped (its
  windows follow the wall clock, which the compressed day does not);
- during each day, a spot shortage (every spot node cordoned: no free spot capacity, new
  spot pods stay Pending) and, later, a spot interruption (a spot node tainted, cordoned,
  drained and deleted, as Karpenter does on a reclaim notice, and a new one added).

Conventions other tools rely on: the admin kubeconfig is ``out/playground/kubeconfig``;
the built ``kubectl`` and ``helm`` are in ``out/playground/bin``; the operator's log is
``out/playground/operator.log``; ``out/playground/pids`` lists every process it started
(all of them stop when it does, and die with it even if it is SIGKILLed); the cluster's
data, certificates and component logs are in ``out/playground/cluster/`` while it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from elastic_tts_dev import binaries as binaries_module
from elastic_tts_dev import nodes
from elastic_tts_dev.cluster import ClusterError, LocalCluster, signals_raise, wait_until
from elastic_tts_dev.operator import OperatorProcess
from elastic_tts_dev.prometheus import Exporter, Prometheus

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "elastic-tts"
EXAMPLE = ROOT / "manifests" / "examples" / "full.yaml"
RELEASE = "elastic-tts"  # the helm release, its namespace and its ServiceAccount
NAMESPACE = "default"
DAY = 86400.0
STATUS_EVERY = 30.0  # wall seconds between the status lines it prints
ROUTE_EVERY = 5.0  # wall seconds between reads of the HTTPRoute's weights


@dataclass(frozen=True)
class Happening:
    """Something the playground does to the cluster at an hour of each day."""

    hour: float
    name: str
    says: str


HAPPENINGS = (
    Happening(7.5, "shortage", "spot shortage: another workload (deployment "
              "other-team/spot-capacity-taken) takes every free GPU on the gpu-spot nodes, "
              "so new spot pods stay Pending (Insufficient nvidia.com/gpu); after "
              "fallbackAfterSeconds (120 s) the operator backs spot off and gpu covers "
              "(MODE fallback, condition SpotFallback)"),
    Happening(11.0, "capacity", "spot capacity is back (that workload is gone); the "
              "operator returns to spot once its back-off (backoffSeconds, 600 s) has passed"),
    Happening(21.5, "interruption", "spot interruption: one gpu-spot node tainted "
              "karpenter.sh/disrupted, cordoned, its pods evicted and the node deleted; "
              "the operator scales gpu up at once and backs spot off for 600 s"),
    Happening(22.0, "replacement", "the cloud adds a new gpu-spot node; spot returns "
              "after the back-off"),
)


OTHER_TEAM = "other-team"


def capacity_taker(spot_nodes: int) -> list[dict[str, Any]]:
    """Another team's pods that ask for every GPU the spot nodes have: they take what is
    free now and whatever a TTS spot pod frees later (the rest of them wait Pending), so
    no new TTS spot pod fits. Not cordoning: the operator reads a cordoned node
    (`node.kubernetes.io/unschedulable`) as one being drained, an interruption."""
    gpus = spot_nodes * nodes.GPU_SPOT.instance.gpus
    pool = nodes.GPU_SPOT
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OTHER_TEAM}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "spot-capacity-taken", "namespace": OTHER_TEAM},
         "spec": {"replicas": gpus, "selector": {"matchLabels": {"app": "batch"}},
                  "template": {"metadata": {"labels": {"app": "batch"}}, "spec": {
                      "nodeSelector": pool.selector(), "tolerations": pool.tolerations(),
                      "containers": [{"name": "batch", "image": "registry.k8s.io/pause:3.10",
                                      "resources": {"limits": {nodes.GPU_RESOURCE: 1}}}]}}}},
    ]


class CompressedDay:
    """The built-in day's load by day-minute: characters and requests per second."""

    def __init__(self) -> None:
        from elastic_tts.simulator.trace import builtin_day  # numpy; the simulator extra
        day = builtin_day()
        minute = np.minimum((day.times // 60).astype(np.int64), 1439)
        self.chars = np.bincount(minute, weights=day.chars, minlength=1440) / 60.0
        self.requests = np.bincount(minute, minlength=1440) / 60.0
        self.note = (f"{day.name} ({day.requests} requests, "
                     f"peak {self.chars.max():.0f} chars/s), {day.notes[0]}")

    def at(self, day_seconds: float) -> tuple[float, float]:
        """(characters/s, requests/s) at this time of day, between day-minutes linearly."""
        position = (day_seconds % DAY) / 60.0 - 0.5
        low = math.floor(position)
        weight = position - low

        def blend(values: Any) -> float:
            return float((1 - weight) * values[low % 1440] + weight * values[(low + 1) % 1440])

        return blend(self.chars), blend(self.requests)


def clock(day_seconds: float) -> str:
    seconds = int(day_seconds % DAY)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def elapsed(seconds: float) -> str:
    return f"+{int(seconds) // 60}:{int(seconds) % 60:02d}"


class Playground:
    def __init__(self, out: Path, speed: float, start_hour: float, keep_schedule: bool,
                 spot_events: bool, say: Callable[[str], None]) -> None:
        self.out = out
        self.speed = speed
        self.start = start_hour * 3600.0
        self.keep_schedule = keep_schedule
        self.spot_events = spot_events
        self.say = say
        self.day = CompressedDay()
        self.cluster: LocalCluster | None = None
        self.operator: OperatorProcess | None = None
        self.exporter: Exporter | None = None
        self.prometheus: Prometheus | None = None
        self.service: dict[str, Any] = {}
        self.weights: dict[str, float] = {}
        self.origin = 0.0

    # -- start and stop ---------------------------------------------------------------

    def up(self) -> None:
        started = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "pids").write_text("")
        shutil.rmtree(self.out / "cluster", ignore_errors=True)  # a SIGKILLed run's
        self.cluster = LocalCluster(workdir=self.out / "cluster")
        self.cluster.start()
        self._record_pids()
        self._publish_tools()
        self.say(f"cluster up in {self.cluster.started_in:.1f} s at {self.cluster.server}")
        cluster = self.cluster
        cluster.helm("install", RELEASE, str(CHART), "--namespace", RELEASE,
                     "--create-namespace", "--wait", "--timeout", "120s")
        self.say(f"chart installed (helm install {RELEASE} charts/elastic-tts)")
        self.exporter = Exporter(NAMESPACE)
        self.prometheus = Prometheus(self.exporter.port)
        self._record_pids()
        kubeconfig = cluster.token_kubeconfig(RELEASE, RELEASE, self.out / "operator.kubeconfig")
        (self.out / "operator.log").write_text("")
        self.operator = OperatorProcess(kubeconfig, self.out / "operator.log",
                                        standalone=True).start()
        self._record_pids()
        self.service = self._service()
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(self.service))
        name = self.service["metadata"]["name"]
        self.origin = time.time()
        self._drive(self.origin)
        wait_until(f"the operator's first decision for {name}", lambda: self._status().get(
            "lastDecision"), 90, every=0.5, alive=self._dead)
        self.say(f"{name} applied and decided; ready in {time.monotonic() - started:.0f} s")

    def down(self) -> None:
        """Stop everything started, newest first; safe to call at any point of `up`."""
        if self.operator is not None:
            self.operator.stop(grace=10)
        if self.prometheus is not None:
            self.prometheus.close()
        if self.exporter is not None:
            self.exporter.close()
        if self.cluster is not None:
            self.cluster.stop()
            shutil.rmtree(self.cluster.workdir, ignore_errors=True)

    def _record_pids(self) -> None:
        pids = [c.pid for c in self.cluster.children] if self.cluster else []
        if self.prometheus is not None and self.prometheus.pid is not None:
            pids.append(self.prometheus.pid)
        if self.operator is not None and self.operator.child is not None:
            pids.append(self.operator.pid)
        (self.out / "pids").write_text("".join(f"{pid}\n" for pid in pids))

    def _publish_tools(self) -> None:
        assert self.cluster is not None
        shutil.copyfile(self.cluster.kubeconfig, self.out / "kubeconfig")
        (self.out / "kubeconfig").chmod(0o600)
        bin_dir = self.out / "bin"
        bin_dir.mkdir(exist_ok=True)
        for tool in ("kubectl", "helm"):
            link = bin_dir / tool
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(self.cluster.binaries[tool])

    def _dead(self) -> str | None:
        if self.operator is not None and not self.operator.alive():
            return f"the operator exited; see {self.out / 'operator.log'}"
        return self.cluster._dead() if self.cluster is not None else None

    def _service(self) -> dict[str, Any]:
        service: dict[str, Any] = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
        assert self.prometheus is not None
        service["metadata"]["namespace"] = NAMESPACE
        service["spec"]["scaling"]["prometheus"]["url"] = self.prometheus.url
        if not self.keep_schedule:
            service["spec"].pop("schedule", None)
        return service

    # -- reading the cluster ------------------------------------------------------------

    def _custom(self, group: str, version: str, plural: str, name: str) -> dict[str, Any]:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        assert self.cluster is not None
        try:
            found = client.CustomObjectsApi(self.cluster.api).get_namespaced_custom_object(
                group, version, NAMESPACE, plural, name, _request_timeout=10)
        except ApiException as exc:
            if exc.status == 404:
                return {}
            raise
        return dict(found) if isinstance(found, dict) else {}

    def _status(self) -> dict[str, Any]:
        name = self.service["metadata"]["name"]
        return dict(self._custom("elastictts.io", "v1alpha1", "ttsservices", name)
                    .get("status") or {})

    def _route_weights(self) -> dict[str, float]:
        """Per pool, the HTTPRoute backend's weight, as the gateway would split traffic."""
        name = self.service["metadata"]["name"]
        route = self._custom("gateway.networking.k8s.io", "v1", "httproutes", name)
        weights: dict[str, float] = {}
        for rule in (route.get("spec") or {}).get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                pool = str(ref.get("name", "")).removeprefix(f"{name}-")
                weights[pool] = float(ref.get("weight") or 0)
        return weights

    # -- the day ------------------------------------------------------------------------

    def day_time(self, wall: float) -> float:
        return self.start + (wall - self.origin) * self.speed

    def _drive(self, wall: float) -> tuple[float, float]:
        """Set each pool's served load for now; returns the total (chars/s, requests/s)."""
        assert self.exporter is not None
        chars, requests = self.day.at(self.day_time(wall))
        pools = list(self.service["spec"]["pools"])
        weights = {p: self.weights.get(p, 0.0) for p in pools}
        total = sum(weights.values())
        if total <= 0:  # no route yet: everything on the pools' first, the CPU floor
            weights, total = {p: float(p == "cpu") for p in pools}, 1.0
        for pool in pools:
            share = weights[pool] / total
            self.exporter.set_load(self.service["metadata"]["name"], pool, chars * share,
                                   requests_per_second=requests * share)
        return chars, requests

    def timetable(self) -> list[str]:
        lines = [f"The day: {self.day.note}; time compressed {self.speed:g}x (one day "
                 f"every {DAY / self.speed / 60:.0f} min), rates as they are, from "
                 f"{clock(self.start)}."]
        if self.spot_events:
            for when in sorted(HAPPENINGS, key=lambda h: (h.hour * 3600 - self.start) % DAY):
                wall = ((when.hour * 3600 - self.start) % DAY) / self.speed
                lines.append(f"  {elapsed(wall):>7}  {clock(when.hour * 3600)}  {when.says}")
        return lines

    def run(self, until: float | None = None) -> None:
        """Drive the day (forever, or for `until` wall seconds), do each happening at its
        hour, and print a status line every STATUS_EVERY seconds."""
        assert self.cluster is not None
        last_route = last_status = 0.0
        # Each happening's next day time, at or after the start of the replay.
        due = {h.name: h.hour * 3600 + DAY * (h.hour * 3600 < self.start) for h in HAPPENINGS}
        for _ in range(10**9):  # bounded by Ctrl-C in practice, by `until` in tests
            now = time.time()
            if until is not None and now - self.origin >= until:
                return
            dead = self._dead()
            if dead:
                raise ClusterError(dead)
            if now - last_route >= ROUTE_EVERY:
                with contextlib.suppress(Exception):  # the next read will do
                    self.weights = self._route_weights()
                last_route = now
            chars, _ = self._drive(now)
            for happening in HAPPENINGS if self.spot_events else ():
                if self.day_time(now) >= due[happening.name]:
                    due[happening.name] += DAY
                    self._happen(happening, now)
            if now - last_status >= STATUS_EVERY:
                self.say(self._status_line(now, chars))
                last_status = now
            time.sleep(1.0)

    def _happen(self, happening: Happening, now: float) -> None:
        assert self.cluster is not None
        spot = self._spot_nodes()
        self.say(f"[{elapsed(now - self.origin)} day {clock(self.day_time(now))}] "
                 f"{happening.says}")
        if happening.name == "shortage":
            self.cluster.kubectl("apply", "-f", "-",
                                 input=yaml.safe_dump_all(capacity_taker(len(spot))))
        elif happening.name == "capacity":
            self.cluster.kubectl("delete", "namespace", OTHER_TEAM, "--wait=false")
        elif happening.name == "interruption":
            busy = [n for n in spot if self._pods_of_service_on(n)]
            if not spot:
                self.say("  (no gpu-spot node left to interrupt)")
                return
            victim = (busy or spot)[0]
            self.cluster.interrupt_node(victim, notice=20)
            self.say(f"  node {victim} is gone")
        elif happening.name == "replacement":
            names = self.cluster.add_nodes(nodes.GPU_SPOT, 1)
            self.say(f"  node {names[0]} is Ready")

    def _spot_nodes(self) -> list[str]:
        assert self.cluster is not None
        listed = self.cluster.kubectl("get", "nodes", "-l",
                                      f"{nodes.POOL_LABEL}={nodes.GPU_SPOT.name}",
                                      "-o", "name").stdout.split()
        return [n.removeprefix("node/") for n in listed]

    def _pods_of_service_on(self, node: str) -> list[Any]:
        assert self.cluster is not None
        return [p for p in self.cluster.pods_on(node) if p.metadata.namespace == NAMESPACE]

    def _status_line(self, now: float, chars: float) -> str:
        try:
            status = self._status()
        except Exception as exc:  # a status line is not worth stopping for
            return f"[{elapsed(now - self.origin)}] (status unavailable: {exc})"
        replicas = status.get("replicas") or {}
        pending = sum(int(p.get("pending") or 0) for p in (status.get("pools") or {}).values())
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        flags = [kind for kind in ("SpotFallback", "Ready") if conditions.get(kind) == "True"]
        return (f"[{elapsed(now - self.origin)} day {clock(self.day_time(now))}] offered "
                f"{chars:4.0f} chars/s | gpu {replicas.get('gpu', 0)} spot "
                f"{replicas.get('spot', 0)} cpu {replicas.get('cpu', 0)}"
                f"{f' ({pending} Pending)' if pending else ''} | mode "
                f"{status.get('mode', '-')} | {' '.join(flags) or '-'}")

    def instructions(self) -> list[str]:
        assert self.prometheus is not None and self.cluster is not None
        out = self.out.resolve()
        name = self.service["metadata"]["name"]
        return [
            "In another terminal:",
            f"  export KUBECONFIG={out / 'kubeconfig'} PATH={out / 'bin'}:$PATH",
            "  kubectl get tts -w                  # mode, replicas per kind of pool, load",
            f"  kubectl get pods -o wide -L {nodes.POOL_LABEL} -w"
            "   # which node each replica is on",
            f"  kubectl get nodes -L {nodes.POOL_LABEL},{nodes.CAPACITY_TYPE_LABEL}",
            f"  kubectl describe tts {name}        # conditions (SpotFallback) and events",
            f"  kubectl get events --field-selector involvedObject.name={name} -w",
            f"  Prometheus: {self.prometheus.url}  (try rate(tts_characters_total[1m]))",
            f"  the operator's log: {out / 'operator.log'}",
            f"Changed from {EXAMPLE.relative_to(ROOT)}: spec.scaling.prometheus.url = "
            f"{self.prometheus.url}"
            + ("" if self.keep_schedule else
               "; spec.schedule removed (its windows follow the wall clock, not the "
               "compressed day; --keep-schedule keeps it)") + ".",
            "There is no container runtime: kwok reports the pods Running and Ready.",
            "Ctrl-C stops everything.",
        ]


@contextlib.contextmanager
def _stopping(playground: Playground) -> Iterator[Playground]:
    try:
        yield playground
    finally:
        playground.down()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m elastic_tts_dev.playground",
        description="elastic-tts on a local cluster with a compressed day of traffic, "
                    "until interrupted.")
    parser.add_argument("--out", type=Path, default=Path("out/playground"),
                        help="kubeconfig, bin/, logs and pids go here (default %(default)s)")
    parser.add_argument("--speed", type=float, default=60.0,
                        help="day seconds per wall second (default %(default)g)")
    parser.add_argument("--start", type=float, default=7.0, metavar="HOUR",
                        help="hour of the day the replay starts at (default %(default)g)")
    parser.add_argument("--keep-schedule", action="store_true",
                        help="keep full.yaml's schedule (its windows follow the wall clock)")
    parser.add_argument("--no-spot-events", action="store_true",
                        help="no spot shortage or interruption")
    parser.add_argument("--for", dest="seconds", type=float, default=None,
                        help="stop after this many seconds of the day replay (default: "
                             "run until interrupted)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.speed <= 3600 or not math.isfinite(args.speed):
        parser.error(f"--speed must be above 0 and at most 3600, got {args.speed:g}")
    if not 0 <= args.start < 24:
        parser.error(f"--start must be an hour from 0 to 24, got {args.start:g}")

    def say(line: str) -> None:
        print(line, flush=True)

    with signals_raise():
        try:
            playground = Playground(args.out, args.speed, args.start, args.keep_schedule,
                                    not args.no_spot_events, say)
            with _stopping(playground):
                try:
                    playground.up()
                except (binaries_module.BuildError, ClusterError) as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 1
                for line in [*playground.timetable(), *playground.instructions()]:
                    say(line)
                try:
                    playground.run(until=args.seconds)
                except ClusterError as exc:
                    print(f"error: {exc}", file=sys.stderr)
                    return 1
                say("stopping")
        except KeyboardInterrupt:
            print("stopping: every process the playground started", flush=True)
            return 0
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
