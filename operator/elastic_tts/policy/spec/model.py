"""The TTSService spec: typed, immutable values, and every fact about each field.

This is the one place a field's name, type, default, bounds, enum and description are
written. The parser (`parse.py`), the CRD (`make manifests`) and the reference docs
(docs/reference/ttsservice.md) are derived from it. Rules across fields are declared in
``RULES``; the one rule the vocabulary cannot derive (``fallbackTo`` names an on-demand
pool) is stated below in both CEL and Python, side by side.

To add a field: declare it with `spec_field` (a number needs a minimum and a maximum;
tests/crd fails on an unbounded one), then run `make manifests`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass
from typing import Any, ClassVar, Literal, get_args

from elastic_tts.policy.cron import validate_cron, validate_timezone
from elastic_tts.policy.spec.fields import (
    NON_BLANK,
    Check,
    OnlyWhen,
    Ordered,
    RequiredWhen,
    Rule,
    Stated,
    spec_field,
)

Accelerator = Literal["gpu", "cpu"]
CapacityType = Literal["on-demand", "spot"]
Engine = Literal["modelscope", "espeak"]
Metric = Literal["characters", "requests"]
WindowMode = Literal["normal", "shutdown", "cpu-only"]
OnMetricsUnavailable = Literal["hold", "fallbackReplicas"]

ACCELERATORS: tuple[Accelerator, ...] = get_args(Accelerator)
CAPACITY_TYPES: tuple[CapacityType, ...] = get_args(CapacityType)
ENGINES: tuple[Engine, ...] = get_args(Engine)
METRICS: tuple[Metric, ...] = get_args(Metric)
WINDOW_MODES: tuple[WindowMode, ...] = get_args(WindowMode)

# The resource these specs belong to (reconcile.kinds and the CRD generator read them).
GROUP = "elastictts.io"
VERSION = "v1alpha1"
KIND = "TTSService"
API_VERSION = f"{GROUP}/{VERSION}"

# Bounds shared by several fields. The API server refuses CEL rules over unbounded maps
# and lists (their estimated cost exceeds its budget), so every collection is bounded.
MAX_POOLS = 12
MAX_WINDOWS = 32
MAX_REPLICAS = 1000
POOL_NAME_MAX = 40  # leaves room for "<service>-<pool>" within the 63-character limit
CHILD_NAME_LIMIT = 63  # a pool's Deployment and Service are named <service>-<pool>: DNS labels
POOL_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # ASCII: it becomes part of child names
HOUR = 3600.0
DAY = 24 * HOUR


def pool_child_name(service: str, pool: str) -> str:
    """The Deployment (and, with routing, the per-pool Service) of one pool."""
    return f"{service}-{pool}"


def child_name_problems(service: str, pools: Mapping[str, object]) -> list[str]:
    """Checked when the resource's name is known: every child name must fit."""
    return [
        f"metadata.name: {service!r} with pool {pool!r} makes child name "
        f"{pool_child_name(service, pool)!r} longer than {CHILD_NAME_LIMIT} characters"
        for pool in pools if len(pool_child_name(service, pool)) > CHILD_NAME_LIMIT
    ]


def _replicas(doc: str, default: int | None = None) -> Any:
    return spec_field(doc, default, minimum=0, maximum=MAX_REPLICAS)


def _seconds(doc: str, default: Any = MISSING, *, minimum: float = 0,
             maximum: float = HOUR, **meta: Any) -> Any:
    """A duration in seconds: none of them is worth more than an hour, unless it says."""
    return spec_field(doc, default, minimum=minimum, maximum=maximum, **meta)


@dataclass(frozen=True, kw_only=True)
class Pool:
    name: str = spec_field("The pool's name: its key in spec.pools.", from_key=True)
    accelerator: Accelerator = spec_field("What the replicas run on.", example="gpu")
    capacity_type: CapacityType = spec_field(
        "On-demand, or spot (cheaper; may be reclaimed or unavailable).", "on-demand")
    min_replicas: int = _replicas("Fewest replicas, whatever the load.", 0)
    max_replicas: int = _replicas("Most replicas, whatever the load.", 10)
    cost_per_hour: float = spec_field(
        "Cost of one replica per hour, in any currency (all pools in the same one).",
        minimum=0, maximum=1000, example=0.526)
    throughput: float = spec_field(
        "Characters per second one replica sustains within the SLO; `elastic-tts "
        "calibrate` measures it on your model and hardware.",
        minimum=0, exclusive_minimum=True, maximum=1e6, example=83.3)
    concurrency: int = spec_field("Requests one replica serves at once.", 1,
                                  minimum=1, maximum=1024)
    cold_start_seconds: float = _seconds(
        "Seconds from scheduling a replica to its being Ready.",
        default_by=("accelerator", {"gpu": 120.0, "cpu": 30.0}))
    fallback_to: str | None = spec_field(
        "For a spot pool, the on-demand pool that covers it while spot is backed off.",
        None, max_length=POOL_NAME_MAX, pattern=NON_BLANK)
    fallback_after_seconds: float = _seconds(
        "How long spot replicas may stay Pending before the pool backs off.", 120.0)
    backoff_seconds: float = _seconds(
        "How long a spot pool backs off after each failure before spot is tried again.", 300.0,
        minimum=1, maximum=DAY)
    node_selector: Mapping[str, str] = spec_field(
        "Node labels the pool's pods require.", factory=dict, max_items=64, max_length=63)
    tolerations: tuple[Mapping[str, Any], ...] = spec_field(
        "Pod tolerations, passed through to the pool's Deployment.", (), max_items=32)
    affinity: Mapping[str, Any] | None = spec_field(
        "Pod affinity, passed through to the pool's Deployment.", None)
    resources: Mapping[str, Any] | None = spec_field(
        "Container resources, passed through (GPU pools always get an nvidia.com/gpu "
        "limit).", None)

    RULES: ClassVar[tuple[Rule, ...]] = (
        Ordered("min_replicas", "max_replicas"),
        OnlyWhen("fallback_to", "capacity_type", "spot", "only spot pools fall back"),
    )

    @property
    def is_spot(self) -> bool:
        return self.capacity_type == "spot"

    @property
    def is_gpu(self) -> bool:
        return self.accelerator == "gpu"

    @property
    def seconds_per_100_chars(self) -> float:
        """Service time of one 100-character request while the replica runs at its rated
        throughput with every concurrency slot busy."""
        return 100.0 * self.concurrency / self.throughput


@dataclass(frozen=True, kw_only=True)
class PrometheusSource:
    url: str = spec_field("The Prometheus that scrapes the workers.",
                          "http://prometheus-server.monitoring.svc:80",
                          max_length=2048, pattern="^https?://",
                          pattern_doc="start with http:// or https://")
    query: str | None = spec_field(
        "A PromQL query that replaces the built-in one; it may use $service, $namespace, "
        "$window and $metric.", None, max_length=4096, pattern=NON_BLANK)
    timeout_seconds: float = spec_field("How long one query may take.", 5.0,
                                        minimum=0, exclusive_minimum=True, maximum=300)


@dataclass(frozen=True, kw_only=True)
class Scaling:
    metric: Metric = spec_field("What load is measured in.", "characters")
    prometheus: PrometheusSource = spec_field("Where the load comes from.",
                                              PrometheusSource())
    target_utilization: float = spec_field(
        "Demand is the load divided by this.", 0.7,
        minimum=0, exclusive_minimum=True, maximum=1)
    latency_slo_seconds: float = spec_field(
        "The latency SLO per 100 characters: a request of c characters meets it within "
        "latencySLOSeconds x max(1, c/100).", 5.0, name="latencySLOSeconds",
        minimum=0, exclusive_minimum=True, maximum=HOUR)
    interval_seconds: float = _seconds("Seconds between two decisions.", 15.0, minimum=1)
    scale_up_stabilization_seconds: float = _seconds(
        "A scale-up waits until the demand has held this long.", 0.0)
    scale_down_stabilization_seconds: float = _seconds(
        "A scale-down goes only to the highest demand seen this long.", 300.0)
    tolerance: float = spec_field(
        "Relative change in demand too small to act on.", 0.1, minimum=0, maximum=0.5)
    max_spot_fraction: float = spec_field("The share of capacity that may be spot.", 0.7,
                                          minimum=0, maximum=1)
    on_metrics_unavailable: OnMetricsUnavailable = spec_field(
        "What to do when Prometheus cannot be asked: hold the replicas, or set "
        "fallbackReplicas.", "hold")
    fallback_replicas: Mapping[str, int] = spec_field(
        "Replicas per pool while metrics are unavailable.", factory=dict,
        max_items=MAX_POOLS, names="pools", minimum=0, maximum=MAX_REPLICAS)
    characters_per_request: float = spec_field(
        "With metric requests: characters in a typical request, converting throughput "
        "to requests/s.", 100.0, minimum=0, exclusive_minimum=True, maximum=100_000)
    transition_grace_seconds: float = _seconds(
        "Make-before-break waits at most the new pool's cold start plus this.", 60.0)
    burst_headroom: float | None = spec_field(
        "Capacity above the sized demand for bursts, as a factor (1.5 = 50 % more). "
        "Unset: follow the burstiness observed over the last hour.", None,
        minimum=1, maximum=10)

    RULES: ClassVar[tuple[Rule, ...]] = (
        RequiredWhen(("fallback_replicas",), "on_metrics_unavailable", "fallbackReplicas"),
    )


@dataclass(frozen=True, kw_only=True)
class PoolBounds:
    min_replicas: int | None = _replicas("The pool's floor while the window is open.")
    max_replicas: int | None = _replicas("The pool's ceiling while the window is open.")

    RULES: ClassVar[tuple[Rule, ...]] = (Ordered("min_replicas", "max_replicas"),)


@dataclass(frozen=True, kw_only=True)
class Window:
    name: str = spec_field("The window's name, unique in the schedule.",
                           max_length=63, pattern=NON_BLANK, example="weekday-peak")
    start: str = spec_field(
        "A five-field cron expression, in the schedule's timezone.", max_length=128,
        pattern=r"^\s*\S+(\s+\S+){4}\s*$", example="0 9 * * 1-5",
        pattern_doc="have five fields (minute hour day-of-month month day-of-week)",
        check=Check(validate_cron, "a valid cron expression (croniter)"))
    duration_seconds: float = spec_field(
        "How long the window stays open: whole seconds, or a string like 8h, 90m or "
        "1h30m.", name="duration", duration=True, minimum=1, maximum=366 * DAY,
        example="10h")
    mode: WindowMode = spec_field(
        "normal applies the pool bounds below; shutdown sets every pool to zero; "
        "cpu-only sets the GPU pools to zero.", "normal")
    pools: Mapping[str, PoolBounds] = spec_field(
        "Per-pool bounds while the window is open.", factory=dict, max_items=MAX_POOLS,
        names="pools")


@dataclass(frozen=True, kw_only=True)
class Schedule:
    timezone: str = spec_field(
        "The IANA timezone the cron starts are read in, such as Asia/Shanghai.", "UTC",
        max_length=64, pattern=NON_BLANK,
        check=Check(validate_timezone, "a timezone in the operator's IANA database"))
    prewarm: bool = spec_field("Raise a window's floors one cold start before it opens.",
                               True)
    windows: tuple[Window, ...] = spec_field(
        "Peak and off-peak windows. When they overlap, the one that opened last wins.",
        (), max_items=MAX_WINDOWS, list_key="name")


@dataclass(frozen=True, kw_only=True)
class GatewayRef:
    name: str | None = spec_field("The Gateway's name.", None, max_length=253,
                                  pattern=NON_BLANK, example="public-gateway")
    namespace: str | None = spec_field("The Gateway's namespace (default: the service's).",
                                       None, max_length=63, pattern=NON_BLANK)


@dataclass(frozen=True, kw_only=True)
class Routing:
    enabled: bool = spec_field(
        "Render a Gateway API HTTPRoute whose backend weights follow each pool's ready "
        "capacity.", False)
    gateway_ref: GatewayRef | None = spec_field("The Gateway the HTTPRoute attaches to.",
                                                None)
    hostnames: tuple[str, ...] = spec_field("The HTTPRoute's hostnames.", (),
                                            max_items=16, max_length=253)

    RULES: ClassVar[tuple[Rule, ...]] = (
        RequiredWhen(("gateway_ref", "name"), "enabled", True),
    )


def _fallback_targets(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    pools: Mapping[str, Pool] = values.get("pools") or {}
    return [
        (f"pools.{pool.name}.fallbackTo", f"no on-demand pool named {pool.fallback_to!r}")
        for pool in pools.values()
        if pool.fallback_to is not None and (
            pool.fallback_to not in pools or pools[pool.fallback_to].is_spot)
    ]


# Stated by hand: CEL and Python say the same thing. capacityType is defaulted before
# CEL runs, so the has() is only belt and braces.
FALLBACK_TARGETS = Stated(
    rule="self.pools.all(k, !has(self.pools[k].fallbackTo) || "
         "(self.pools[k].fallbackTo in self.pools && "
         "(!has(self.pools[self.pools[k].fallbackTo].capacityType) || "
         "self.pools[self.pools[k].fallbackTo].capacityType == 'on-demand')))",
    message="fallbackTo must name an on-demand pool of this TTSService",
    field_path=".pools",
    run=_fallback_targets,
)


@dataclass(frozen=True, kw_only=True)
class TTSServiceSpec:
    model: str = spec_field("ModelScope model id, or a local path inside the image.",
                            "damo/speech_sambert-hifigan_tts_zh-cn_16k",
                            max_length=512, pattern=NON_BLANK)
    engine: Engine = spec_field("The worker's engine.", "modelscope")
    image: str = spec_field("The worker image, shared by every pool. The default, built by "
                            "`make images`, carries the default engine for GPU and CPU "
                            "pools.",
                            "ghcr.io/elastic-tts/worker-gpu:0.1.0",
                            max_length=512, pattern=NON_BLANK)
    voices: tuple[str, ...] = spec_field("Voices the worker offers (default: the engine's).",
                                         (), max_items=64, max_length=64)
    emotions: tuple[str, ...] = spec_field(
        "Emotions the worker offers (default: the engine's).", (), max_items=64,
        max_length=64)
    pools: Mapping[str, Pool] = spec_field(
        "Node pools by name, in the order written.", min_items=1, max_items=MAX_POOLS,
        key_pattern=POOL_NAME, key_max_length=POOL_NAME_MAX,
        key_doc="pool names are lowercase letters, digits and '-'")
    scaling: Scaling = spec_field("How load is measured and turned into replicas.",
                                  Scaling())
    schedule: Schedule = spec_field("Peak, off-peak and shutdown windows.", Schedule())
    routing: Routing = spec_field("Capacity-weighted routing through the Gateway API.",
                                  Routing())
    paused: bool = spec_field("When true the operator leaves the replicas as they are.",
                              False)

    RULES: ClassVar[tuple[Rule, ...]] = (FALLBACK_TARGETS,)

    def pool(self, name: str) -> Pool:
        return self.pools[name]
