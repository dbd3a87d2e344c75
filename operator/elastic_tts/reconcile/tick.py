"""One control-loop tick for one TTSService: observe -> decide -> apply -> status.

`Ticker.tick` is called by the kopf daemon every `scaling.intervalSeconds`, and by tests
and the benchmark with `now` passed in. The tick is the one writer of what follows the
load: replica counts (through the replica executor) and the HTTPRoute's weights, which
it compares with the live route, not with what status says it wrote.

The engine's Memory lives in ``status.engine.memory`` so that a restarted operator
resumes where the last one stopped. The caller may pass the memory of its own last tick
(the daemon keeps it in kopf's per-object memo), because the status it sees may lag its
own last write by one watch event. The Ticker itself keeps nothing per service.

A tick reads its service's Deployments and pods from the shared ChildCache (one list and
watch per kind, see informer.py) when the cluster can watch, so its only API request is
its status write (plus the scales it changes). Until the cache has listed, and on a
cluster port that cannot watch, the tick lists them itself, in flight together with the
load read: a tick then waits for the slowest of the three and for its status write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

from elastic_tts.policy import (
    Decision,
    Memory,
    Observation,
    SpecError,
    TTSServiceSpec,
    decide,
    parse_spec,
)
from elastic_tts.reconcile import reasons
from elastic_tts.reconcile.children import Adopt, apply_child, ensure_children, merge_patch
from elastic_tts.reconcile.executor import ReplicaExecutor, ScaleChange
from elastic_tts.reconcile.informer import ChildCache
from elastic_tts.reconcile.kinds import (
    DEPLOYMENTS,
    NODES,
    PODS,
    TTSSERVICES,
    pool_child_name,
    selector,
)
from elastic_tts.reconcile.observe import Load, PoolView, observe_pools, read_load
from elastic_tts.reconcile.ports import (
    Cluster,
    LoadSource,
    Manifest,
    MetricsUnavailable,
    WatchableCluster,
)
from elastic_tts.reconcile.render import (
    render_children,
    render_route,
    route_backend_weights,
    route_weights,
)
from elastic_tts.reconcile.status import (
    Event,
    due,
    flipped_to,
    newest,
    scale_events,
    set_condition,
    timestamp,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceRef:
    name: str
    namespace: str
    generation: int | None = None


@dataclass(frozen=True)
class TickSettings:
    rate_windows: tuple[str, str] = ("1m", "5m")  # short and long PromQL rate windows
    # The newest scrape interval's rate (bursts) and the backlog gauge's mean: two of the
    # chart's 15 s scrapes. None: no burst signal (the engine's burst stage is skipped).
    burst_window: str | None = "30s"
    node_cache_seconds: float = 5.0  # one node list serves every service's tick
    # Reads a tick hands to other threads (two each: it makes the third itself), for as
    # many ticks as run at once (the handlers' 16 tick threads).
    read_threads: int = 32
    # Read Deployments and pods from a watched cache (where the cluster port can watch),
    # one per namespace, or one for the whole cluster when the operator watches it all.
    watch_children: bool = True
    cluster_wide: bool = False
    # A tick whose status differs from the last written one only in its figures (load,
    # rolling memory; status.due) writes it every this many ticks; 1: every tick.
    status_refresh_ticks: int = 4


@dataclass
class TickResult:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    spec: TTSServiceSpec | None = None  # None: the spec was refused (see problems)
    decision: Decision | None = None
    changes: list[ScaleChange] = field(default_factory=list)
    metrics_error: str | None = None
    problems: list[str] = field(default_factory=list)
    recreated: dict[str, str] = field(default_factory=dict)
    route: str | None = None  # what apply_child did to the HTTPRoute, with routing on
    status_due: bool = True  # whether status is worth writing (status.due)


class _NodeCache:
    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._at = float("-inf")
        self._nodes: list[Manifest] = []
        self._lock = threading.Lock()

    def get(self, cluster: Cluster, now: float) -> list[Manifest]:
        with self._lock:
            if now - self._at >= self._ttl or now < self._at:
                self._nodes = cluster.list(NODES, None)
                self._at = now
            return self._nodes


def observed(observation: Observation) -> dict[str, float]:
    """The load inputs of the tick's Observation, for status: what the engine saw, so a
    decision can be explained (and replayed) from the object alone. A signal not observed
    is left out (a null in a merge patch would delete the key anyway)."""
    figures = {"shortRate": observation.short_rate,
               "longRate": observation.long_rate,
               "burstRate": observation.burst_rate,
               "requestsRate": observation.requests_rate,
               "backlogCharacters": observation.backlog_characters,
               "refusedShare": observation.refused_share}
    return {key: round(value, 6) for key, value in figures.items() if value is not None}


def _class_totals(spec: TTSServiceSpec, replicas: Mapping[str, int]) -> dict[str, int]:
    totals = {"gpu": 0, "spot": 0, "cpu": 0}
    for name, count in replicas.items():
        pool = spec.pools[name]
        key = "spot" if pool.is_spot else "gpu" if pool.is_gpu else "cpu"
        totals[key] += count
    return totals


def _can_watch(cluster: Cluster) -> bool:
    return callable(getattr(cluster, "watch", None)) and callable(
        getattr(cluster, "list_versioned", None))


class Ticker:
    """What every service's tick shares: the clients, the settings, the node cache."""

    def __init__(self, cluster: Cluster, load: LoadSource,
                 settings: TickSettings | None = None) -> None:
        self.cluster = cluster
        self.load = load
        self.settings = settings or TickSettings()
        self.executor = ReplicaExecutor(cluster)
        self._nodes = _NodeCache(self.settings.node_cache_seconds)
        self._reads = ThreadPoolExecutor(max_workers=self.settings.read_threads,
                                         thread_name_prefix="tick-read")
        self.children: ChildCache | None = None
        if self.settings.watch_children and _can_watch(cluster):
            self.children = ChildCache(cast(WatchableCluster, cluster),
                                       self.settings.cluster_wide)

    def close(self) -> None:
        """Stop the cache's watches and the read threads (an operator that stops exits
        anyway; an in-process ticker in a test must not outlive its cluster)."""
        if self.children is not None:
            self.children.close()
        self._reads.shutdown(wait=False)

    def _reads_of(self, ref: ServiceRef, spec: TTSServiceSpec
                  ) -> tuple[list[Manifest], list[Manifest], tuple[Load | None, str | None]]:
        """The service's Deployments and pods, and its load: from the cache when it has
        listed, else three reads in flight together."""
        ns = ref.namespace
        cached = self.children.children(ns, ref.name) if self.children is not None else None
        if cached is not None:
            return cached[0], cached[1], self._load(spec, ref)
        listing = self._reads.submit(self.cluster.list, DEPLOYMENTS, ns, selector(ref.name))
        loading = self._reads.submit(self._load, spec, ref)
        pods = self.cluster.list(PODS, ns, selector(ref.name))
        return listing.result(), pods, loading.result()

    def _load(self, spec: TTSServiceSpec, ref: ServiceRef) -> tuple[Load | None, str | None]:
        try:
            return read_load(self.load, spec, ref.name, ref.namespace,
                             self.settings.rate_windows, self.settings.burst_window), None
        except MetricsUnavailable as exc:
            return None, str(exc)

    def invalid_status(self, ref: ServiceRef, status: Mapping[str, Any], problems: list[str],
                       now: float) -> dict[str, Any]:
        new = dict(status)
        new["conditions"] = set_condition(status.get("conditions"), reasons.INVALID_SPEC, True,
                                          reasons.SPEC_INVALID, "; ".join(problems), now)
        if ref.generation is not None:
            new["observedGeneration"] = ref.generation
        return new

    def tick(self, ref: ServiceRef, raw_spec: Mapping[str, Any], status: Mapping[str, Any],
             now: float, adopt: Adopt, memory: Memory | None = None,
             written: Mapping[str, Any] | None = None) -> TickResult:
        """`memory` and `written` are the engine memory of the caller's own last tick and
        its last status write (the whole status, or `status.compared` of it), where it
        keeps them: the status it is handed may lag its writes by some watch events (at
        500 services, by more than a tick)."""
        status = dict(status or {})
        try:
            spec = parse_spec(raw_spec, name=ref.name)
        except SpecError as exc:
            return TickResult(self.invalid_status(ref, status, exc.problems, now),
                              problems=list(exc.problems))
        engine = status.get("engine") or {}
        resumed = memory is None  # a daemon's first tick: its status says it took over
        if memory is None:
            memory = Memory.from_dict(engine.get("memory"))
        seen = set(engine.get("interruptedPods") or [])

        ns = ref.namespace
        deployments, pods, (load, metrics_error) = self._reads_of(ref, spec)
        nodes = self._nodes.get(self.cluster, now) if any(
            p.get("spec", {}).get("nodeName") for p in pods) else []
        view = observe_pools(spec, deployments, pods, nodes, seen, now)

        result = TickResult(status={}, spec=spec)
        if view.missing:
            # A child deleted by hand, or a tick racing the create handler: converge.
            wanted = [m for m in render_children(ref.name, spec)
                      if m["kind"] == DEPLOYMENTS.kind
                      and m["metadata"]["labels"].get("elastictts.io/pool") in view.missing]
            result.recreated = ensure_children(self.cluster, ns, ref.name, wanted, adopt)

        result.metrics_error = metrics_error
        observation = Observation(
            short_rate=load.short_rate if load else None,
            long_rate=load.long_rate if load else None,
            pools=view.states,
            metrics_available=load is not None,
            burst_rate=load.burst_rate if load else None,
            requests_rate=load.requests_rate if load else None,
            backlog_characters=load.backlog_characters if load else None,
            refused_share=load.refused_share if load else None,
        )
        decision = decide(spec, observation, memory, now)
        result.decision = decision
        current = {name: state.current for name, state in view.states.items()}
        if not spec.paused:
            result.changes = self.executor.apply(ns, ref.name, decision.replicas, current,
                                                 set(view.missing))

        weights = None
        if spec.routing.enabled:
            weights = route_weights(spec, {n: s.ready for n, s in view.states.items()})
            result.route = self._converge_route(ref, spec, weights, adopt)

        result.status = self._status(ref, spec, status, decision, observation, view, load,
                                     result, weights, now)
        result.events = self._events(status, result.status, decision, result.changes)
        result.status_due = resumed or due(
            newest(status, written), result.status, now,
            self._refresh_seconds(spec.scaling.interval_seconds))
        return result

    def _refresh_seconds(self, interval: float) -> float:
        # Half an interval short of the count, as ticks do not land on the second.
        ticks = self.settings.status_refresh_ticks
        return (ticks - 0.5) * interval if ticks > 1 else 0.0

    def _converge_route(self, ref: ServiceRef, spec: TTSServiceSpec,
                        weights: Mapping[str, int], adopt: Adopt) -> str:
        """Create the HTTPRoute, or bring it to the spec's shape and these weights. The
        live route is what counts: whatever wrote it last, and whatever status says."""
        route = render_route(ref.name, spec, weights)
        adopt([route])
        wanted = {pool_child_name(ref.name, pool): weight for pool, weight in weights.items()}
        return apply_child(self.cluster, ref.namespace, route,
                           strayed=lambda live: route_backend_weights(live) != wanted)

    def _status(self, ref: ServiceRef, spec: TTSServiceSpec, old: Mapping[str, Any],
                decision: Decision, observation: Observation, view: PoolView,
                load: Load | None, result: TickResult, weights: Mapping[str, int] | None,
                now: float) -> dict[str, Any]:
        conditions = old.get("conditions")
        pending_ready = [
            f"{name} {view.states[name].ready}/{target} ready"
            for name, target in decision.replicas.items()
            if view.states[name].ready < target
        ]
        conditions = set_condition(
            conditions, reasons.READY, not pending_ready,
            reasons.STARTING if pending_ready else reasons.ALL_READY,
            ", ".join(pending_ready) or "every pool has its desired replicas ready", now)
        conditions = set_condition(
            conditions, reasons.METRICS_AVAILABLE, load is not None,
            reasons.QUERY_OK if load is not None else reasons.QUERY_FAILED,
            "Prometheus answered" if load is not None
            else f"{result.metrics_error}; replicas held", now)
        backed = {name: until for name, until in decision.spot_backoff.items()}
        fallback_msg = ", ".join(
            f"{name} backed off until {timestamp(until)}, covered by "
            f"{spec.pools[name].fallback_to or 'nothing'}" for name, until in backed.items())
        conditions = set_condition(
            conditions, reasons.SPOT_FALLBACK, bool(backed),
            reasons.SPOT_BACKED_OFF if backed else reasons.SPOT_HEALTHY,
            fallback_msg or "spot pools healthy", now)
        conditions = set_condition(
            conditions, reasons.PAUSED, spec.paused,
            reasons.PAUSED_BY_SPEC if spec.paused else reasons.RUNNING,
            "spec.paused is true: replicas are left alone" if spec.paused
            else "the operator manages replicas", now)
        conditions = set_condition(conditions, reasons.INVALID_SPEC, False, reasons.SPEC_VALID,
                                   "spec accepted", now)
        problems = view.worker_problems
        conditions = set_condition(
            conditions, reasons.WORKER_FAILING, bool(problems),
            reasons.ENGINE_FAILED if problems else reasons.WORKERS_STARTING,
            "; ".join(f"pool {pool}: {why}" for pool, why in sorted(problems.items()))
            or "no worker reports that it cannot start", now)
        pools = {}
        for name, target in decision.replicas.items():
            state = view.states[name]
            entry: dict[str, Any] = {
                "desired": target, "current": state.current, "ready": state.ready,
                "pending": state.pending, "pendingSeconds": round(state.pending_seconds, 1),
            }
            if load is not None:
                entry.update(load.per_pool.get(name, {}))
            if name in backed:
                entry["spotBackoffUntil"] = timestamp(backed[name])
            pools[name] = entry
        status: dict[str, Any] = {
            "mode": decision.mode,
            "window": decision.window,
            "costPerHour": round(decision.cost_per_hour, 4),
            "replicas": _class_totals(spec, decision.replicas),
            "load": {
                "requestsPerSecond": round(load.requests_per_second, 3) if load else None,
                "charactersPerSecond": round(load.characters_per_second, 3) if load else None,
                "demand": round(decision.demand, 3) if decision.demand is not None else None,
            },
            "pools": pools,
            "lastDecision": {"time": timestamp(now), "reason": decision.reason,
                             "replicas": dict(decision.replicas)},
            "conditions": conditions,
            "engine": {"memory": decision.memory.to_dict(),
                       "observation": observed(observation),
                       "interruptedPods": sorted(view.interrupted_uids)},
        }
        if weights is not None:
            status["routeWeights"] = dict(weights)
        if ref.generation is not None:
            status["observedGeneration"] = ref.generation
        return status

    def _events(self, old: Mapping[str, Any], new: Mapping[str, Any], decision: Decision,
                changes: list[ScaleChange]) -> list[Event]:
        events = scale_events(changes, decision.reason)
        before, after = old.get("conditions"), new["conditions"]
        if flipped_to(before, after, reasons.METRICS_AVAILABLE, False):
            message = next(c["message"] for c in after
                           if c["type"] == reasons.METRICS_AVAILABLE)
            events.append(Event("Warning", reasons.METRICS_UNAVAILABLE, message))
        if flipped_to(before, after, reasons.SPOT_FALLBACK, True):
            message = next(c["message"] for c in after if c["type"] == reasons.SPOT_FALLBACK)
            events.append(Event("Warning", reasons.SPOT_FALLBACK_EVENT, message))
        elif flipped_to(before, after, reasons.SPOT_FALLBACK, False):
            events.append(Event("Normal", reasons.SPOT_RECOVERED, "spot pools healthy again"))
        if flipped_to(before, after, reasons.WORKER_FAILING, True):
            message = next(c["message"] for c in after if c["type"] == reasons.WORKER_FAILING)
            events.append(Event("Warning", reasons.ENGINE_FAILED, message))
        if decision.window is not None and decision.window != old.get("window"):
            events.append(Event("Normal", reasons.SCHEDULE_WINDOW_OPENED,
                                f"window {decision.window!r} is open (mode {decision.mode})"))
        return events

    def write_status(self, ref: ServiceRef, old: Mapping[str, Any],
                     new: Mapping[str, Any]) -> bool:
        """Patch only what changed, on the status subresource."""
        patch = merge_patch(dict(old or {}), dict(new))
        if patch == {}:
            return False
        self.cluster.patch(TTSSERVICES, ref.namespace, ref.name, {"status": patch},
                           subresource="status")
        return True
