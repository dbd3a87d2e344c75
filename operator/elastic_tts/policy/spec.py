"""The TTSService spec as typed, immutable values.

One model serves the operator, the simulator, `elastic-tts explain` and the tests that
check the CRD schema. Parsing applies defaults and collects every problem it finds; each
message starts with the field path (``spec.pools.gpu-spot.fallbackTo: ...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from elastic_tts.policy.cron import CronError, validate_cron, validate_timezone
from elastic_tts.policy.durations import parse_duration

Accelerator = Literal["gpu", "cpu"]
CapacityType = Literal["on-demand", "spot"]
Metric = Literal["characters", "requests"]
WindowMode = Literal["normal", "shutdown", "cpu-only"]
OnMetricsUnavailable = Literal["hold", "fallbackReplicas"]

ACCELERATORS: tuple[Accelerator, ...] = ("gpu", "cpu")
CAPACITY_TYPES: tuple[CapacityType, ...] = ("on-demand", "spot")
METRICS: tuple[Metric, ...] = ("characters", "requests")
WINDOW_MODES: tuple[WindowMode, ...] = ("normal", "shutdown", "cpu-only")
ON_METRICS_UNAVAILABLE: tuple[OnMetricsUnavailable, ...] = ("hold", "fallbackReplicas")
ENGINES = ("modelscope", "espeak")
POOL_NAME_MAX = 40  # leaves room for "<service>-<pool>" within the 63-char label limit
# Upper bounds the CRD states too: the API server refuses CEL rules over unbounded maps
# and lists (their estimated cost exceeds the budget), so the model must agree on them.
MAX_POOLS = 12
MAX_WINDOWS = 32
_POOL_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
DEFAULT_COLD_START = {"gpu": 120.0, "cpu": 30.0}


class SpecError(ValueError):
    """A TTSService spec that cannot be used. ``problems`` holds one line per field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Pool:
    name: str
    accelerator: Accelerator
    capacity_type: CapacityType
    min_replicas: int
    max_replicas: int
    cost_per_hour: float
    throughput: float  # characters per second one replica sustains
    concurrency: int  # requests one replica serves at once
    cold_start_seconds: float
    fallback_to: str | None = None
    fallback_after_seconds: float = 120.0
    backoff_seconds: float = 300.0
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] | None = None
    resources: Mapping[str, Any] | None = None

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


@dataclass(frozen=True)
class PrometheusSource:
    url: str = "http://prometheus-server.monitoring.svc:80"
    query: str | None = None
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class Scaling:
    metric: Metric = "characters"
    prometheus: PrometheusSource = PrometheusSource()
    target_utilization: float = 0.7
    latency_slo_seconds: float = 5.0
    interval_seconds: float = 15.0
    scale_up_stabilization_seconds: float = 0.0
    scale_down_stabilization_seconds: float = 300.0
    tolerance: float = 0.1
    max_spot_fraction: float = 0.7
    on_metrics_unavailable: OnMetricsUnavailable = "hold"
    fallback_replicas: Mapping[str, int] = field(default_factory=dict)
    characters_per_request: float = 100.0  # converts requests/s to capacity units
    transition_grace_seconds: float = 60.0
    burst_headroom: float | None = None  # None: follow the burstiness observed


@dataclass(frozen=True)
class PoolBounds:
    min_replicas: int | None = None
    max_replicas: int | None = None


@dataclass(frozen=True)
class Window:
    name: str
    start: str  # cron expression, in the schedule's timezone
    duration_seconds: float
    mode: WindowMode = "normal"
    pools: Mapping[str, PoolBounds] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule:
    timezone: str = "UTC"
    prewarm: bool = True
    windows: tuple[Window, ...] = ()


@dataclass(frozen=True)
class Routing:
    enabled: bool = False
    gateway_name: str | None = None
    gateway_namespace: str | None = None
    hostnames: tuple[str, ...] = ()


@dataclass(frozen=True)
class TTSServiceSpec:
    pools: Mapping[str, Pool]  # in the order written
    scaling: Scaling = Scaling()
    schedule: Schedule = Schedule()
    routing: Routing = Routing()
    paused: bool = False
    model: str = "damo/speech_sambert-hifigan_tts_zh-cn_16k"
    engine: str = "modelscope"
    image: str = "ghcr.io/elastic-tts/worker:0.1.0"
    voices: tuple[str, ...] = ()
    emotions: tuple[str, ...] = ()

    def pool(self, name: str) -> Pool:
        return self.pools[name]


# --- parsing -------------------------------------------------------------------------


class _Reader:
    """Reads typed fields from one mapping, recording problems instead of raising."""

    def __init__(self, data: Mapping[str, Any], path: str, problems: list[str]) -> None:
        self.data = data
        self.path = path
        self.problems = problems

    def problem(self, key: str | None, message: str) -> None:
        where = f"{self.path}.{key}" if key else self.path
        self.problems.append(f"{where}: {message}")

    def unknown(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.problem(str(key), f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def number(
        self,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
    ) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(key, f"must be a number, got {value!r}")
            return default
        if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
            relation = "greater than" if exclusive_minimum else "at least"
            self.problem(key, f"must be {relation} {minimum:g}, got {value:g}")
            return default
        if maximum is not None and value > maximum:
            self.problem(key, f"must be at most {maximum:g}, got {value:g}")
            return default
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"must be a whole number, got {value!r}")
            return default
        if value < minimum:
            self.problem(key, f"must be at least {minimum}, got {value}")
            return default
        return value

    def string(self, key: str, default: str | None) -> str | None:
        value = self.data.get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.problem(key, f"must be a non-empty string, got {value!r}")
            return default
        return value

    def choice(self, key: str, default: str, options: tuple[str, ...]) -> str:
        value = self.data.get(key, default)
        if value not in options:
            self.problem(key, f"must be one of {', '.join(options)}, got {value!r}")
            return default
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {value!r}")
            return default
        return value

    def duration(self, key: str, default: float) -> float:
        if key not in self.data:
            return default
        if isinstance(self.data[key], float):
            # The CRD types durations as int-or-string; the API server refuses 1.5.
            self.problem(key, f"whole seconds or a string like '90m', got {self.data[key]!r}")
            return default
        try:
            return parse_duration(self.data[key])
        except ValueError as exc:
            self.problem(key, str(exc))
            return default

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.data.get(key, {})
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(key, f"must be a mapping, got {type(value).__name__}")
            return {}
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(key, "must be a list of strings")
            return ()
        return tuple(value)

    def child(self, key: str) -> _Reader:
        return _Reader(self.mapping(key), f"{self.path}.{key}", self.problems)


_POOL_FIELDS = {
    "accelerator", "capacityType", "minReplicas", "maxReplicas", "costPerHour",
    "throughput", "concurrency", "coldStartSeconds", "fallbackTo", "fallbackAfterSeconds",
    "backoffSeconds", "nodeSelector", "tolerations", "affinity", "resources",
}


def _parse_pool(name: str, reader: _Reader) -> Pool:
    reader.unknown(_POOL_FIELDS)
    for required in ("accelerator", "costPerHour", "throughput"):
        if required not in reader.data:
            reader.problem(required, "is required")
    accelerator = reader.choice("accelerator", "cpu", ACCELERATORS)
    min_replicas = reader.integer("minReplicas", 0)
    max_replicas = reader.integer("maxReplicas", 10)
    if min_replicas > max_replicas:
        reader.problem(
            "minReplicas", f"must not exceed maxReplicas ({min_replicas} > {max_replicas})"
        )
    tolerations = reader.data.get("tolerations", [])
    if not isinstance(tolerations, list) or not all(isinstance(t, Mapping) for t in tolerations):
        reader.problem("tolerations", "must be a list of mappings")
        tolerations = []
    node_selector = reader.mapping("nodeSelector")
    if not all(isinstance(v, str) for v in node_selector.values()):
        reader.problem("nodeSelector", "values must be strings")
    affinity = reader.mapping("affinity") or None
    resources = reader.mapping("resources") or None
    return Pool(
        name=name,
        accelerator=accelerator,  # type: ignore[arg-type]
        capacity_type=reader.choice("capacityType", "on-demand", CAPACITY_TYPES),  # type: ignore[arg-type]
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        cost_per_hour=reader.number("costPerHour", 1.0, minimum=0),
        throughput=reader.number("throughput", 1.0, minimum=0, exclusive_minimum=True),
        concurrency=reader.integer("concurrency", 1, minimum=1),
        cold_start_seconds=reader.number(
            "coldStartSeconds", DEFAULT_COLD_START[accelerator], minimum=0
        ),
        fallback_to=reader.string("fallbackTo", None),
        fallback_after_seconds=reader.number("fallbackAfterSeconds", 120.0, minimum=0),
        backoff_seconds=reader.number("backoffSeconds", 300.0, minimum=1),
        node_selector=dict(node_selector),
        tolerations=tuple(dict(t) for t in tolerations),
        affinity=affinity,
        resources=resources,
    )


def _parse_pools(reader: _Reader) -> dict[str, Pool]:
    raw = reader.mapping("pools")
    if "pools" not in reader.data:
        reader.problem("pools", "is required: at least one pool")
    elif not raw:
        reader.problem("pools", "must name at least one pool")
    elif len(raw) > MAX_POOLS:
        reader.problem("pools", f"at most {MAX_POOLS} pools, got {len(raw)}")
    pools: dict[str, Pool] = {}
    for name, body in raw.items():
        path = f"{reader.path}.pools.{name}"
        if not isinstance(name, str) or not _valid_pool_name(name):
            reader.problems.append(
                f"{path}: pool names are lowercase letters, digits and '-', "
                f"at most {POOL_NAME_MAX} characters"
            )
            continue
        if not isinstance(body, Mapping):
            reader.problems.append(f"{path}: must be a mapping")
            continue
        pools[name] = _parse_pool(name, _Reader(body, path, reader.problems))
    for pool in pools.values():
        path = f"{reader.path}.pools.{pool.name}"
        if pool.fallback_to is None:
            continue
        target = pools.get(pool.fallback_to)
        if not pool.is_spot:
            reader.problems.append(f"{path}.fallbackTo: only spot pools fall back")
        elif target is None or target.is_spot:
            reader.problems.append(
                f"{path}.fallbackTo: no on-demand pool named {pool.fallback_to!r}"
            )
    return pools


def _valid_pool_name(name: str) -> bool:
    # ASCII only: the name becomes part of Deployment names and label values.
    return (
        0 < len(name) <= POOL_NAME_MAX
        and name[0] != "-"
        and name[-1] != "-"
        and all(c in _POOL_NAME_CHARS for c in name)
    )


_SCALING_FIELDS = {
    "metric", "prometheus", "targetUtilization", "latencySLOSeconds", "intervalSeconds",
    "scaleUpStabilizationSeconds", "scaleDownStabilizationSeconds", "tolerance",
    "maxSpotFraction", "onMetricsUnavailable", "fallbackReplicas", "charactersPerRequest",
    "transitionGraceSeconds", "burstHeadroom",
}


def _parse_scaling(reader: _Reader, pools: Mapping[str, Pool]) -> Scaling:
    reader.unknown(_SCALING_FIELDS)
    prom = reader.child("prometheus")
    prom.unknown({"url", "query", "timeoutSeconds"})
    url = prom.string("url", PrometheusSource.url) or PrometheusSource.url
    if not url.startswith(("http://", "https://")):
        prom.problem("url", f"must start with http:// or https://, got {url!r}")
    fallback = reader.child("fallbackReplicas")
    fallback_replicas: dict[str, int] = {}
    for name in fallback.data:
        if name not in pools:
            fallback.problem(str(name), "no pool of that name")
        else:
            fallback_replicas[name] = fallback.integer(name, 0)
    on_missing = reader.choice("onMetricsUnavailable", "hold", ON_METRICS_UNAVAILABLE)
    if on_missing == "fallbackReplicas" and not fallback_replicas:
        reader.problem(
            "fallbackReplicas", "is required when onMetricsUnavailable is fallbackReplicas"
        )
    return Scaling(
        metric=reader.choice("metric", "characters", METRICS),  # type: ignore[arg-type]
        prometheus=PrometheusSource(
            url=url,
            query=prom.string("query", None),
            timeout_seconds=prom.number("timeoutSeconds", 5.0, minimum=0, exclusive_minimum=True),
        ),
        target_utilization=reader.number(
            "targetUtilization", 0.7, minimum=0, exclusive_minimum=True, maximum=1
        ),
        latency_slo_seconds=reader.number(
            "latencySLOSeconds", 5.0, minimum=0, exclusive_minimum=True
        ),
        interval_seconds=reader.number("intervalSeconds", 15.0, minimum=1),
        scale_up_stabilization_seconds=reader.number(
            "scaleUpStabilizationSeconds", 0.0, minimum=0, maximum=3600
        ),
        scale_down_stabilization_seconds=reader.number(
            "scaleDownStabilizationSeconds", 300.0, minimum=0, maximum=3600
        ),
        tolerance=reader.number("tolerance", 0.1, minimum=0, maximum=0.5),
        max_spot_fraction=reader.number("maxSpotFraction", 0.7, minimum=0, maximum=1),
        on_metrics_unavailable=on_missing,  # type: ignore[arg-type]
        fallback_replicas=fallback_replicas,
        characters_per_request=reader.number(
            "charactersPerRequest", 100.0, minimum=0, exclusive_minimum=True
        ),
        transition_grace_seconds=reader.number("transitionGraceSeconds", 60.0, minimum=0),
        burst_headroom=reader.number("burstHeadroom", 1.0, minimum=1, maximum=10)
        if "burstHeadroom" in reader.data else None,
    )


def _parse_schedule(reader: _Reader, pools: Mapping[str, Pool]) -> Schedule:
    reader.unknown({"timezone", "prewarm", "windows"})
    timezone = reader.string("timezone", "UTC") or "UTC"
    try:
        validate_timezone(timezone)
    except CronError as exc:
        reader.problem("timezone", str(exc))
    raw_windows = reader.data.get("windows", [])
    if not isinstance(raw_windows, list):
        reader.problem("windows", "must be a list")
        raw_windows = []
    elif len(raw_windows) > MAX_WINDOWS:
        reader.problem("windows", f"at most {MAX_WINDOWS} windows, got {len(raw_windows)}")
    windows: list[Window] = []
    seen: set[str] = set()
    for index, body in enumerate(raw_windows):
        path = f"{reader.path}.windows[{index}]"
        if not isinstance(body, Mapping):
            reader.problems.append(f"{path}: must be a mapping")
            continue
        window = _parse_window(_Reader(body, path, reader.problems), pools)
        if window is None:
            continue
        if window.name in seen:
            reader.problems.append(f"{path}.name: duplicate window name {window.name!r}")
        seen.add(window.name)
        windows.append(window)
    return Schedule(
        timezone=timezone, prewarm=reader.boolean("prewarm", True), windows=tuple(windows)
    )


def _parse_window(reader: _Reader, pools: Mapping[str, Pool]) -> Window | None:
    reader.unknown({"name", "start", "duration", "mode", "pools"})
    for required in ("name", "start", "duration"):
        if required not in reader.data:
            reader.problem(required, "is required")
    name = reader.string("name", "window") or "window"
    start = reader.string("start", None)
    if start is not None:
        try:
            validate_cron(start)
        except CronError as exc:
            reader.problem("start", str(exc))
    bounds: dict[str, PoolBounds] = {}
    overrides = reader.child("pools")
    for pool_name, body in overrides.data.items():
        path = f"{overrides.path}.{pool_name}"
        if pool_name not in pools:
            reader.problems.append(f"{path}: no pool of that name")
            continue
        if not isinstance(body, Mapping):
            reader.problems.append(f"{path}: must be a mapping")
            continue
        sub = _Reader(body, path, reader.problems)
        sub.unknown({"minReplicas", "maxReplicas"})
        low = sub.integer("minReplicas", 0) if "minReplicas" in body else None
        high = sub.integer("maxReplicas", 0) if "maxReplicas" in body else None
        if low is not None and high is not None and low > high:
            sub.problem("minReplicas", f"must not exceed maxReplicas ({low} > {high})")
        bounds[pool_name] = PoolBounds(low, high)
    return Window(
        name=name,
        start=start or "0 0 * * *",
        duration_seconds=reader.duration("duration", 3600.0),
        mode=reader.choice("mode", "normal", WINDOW_MODES),  # type: ignore[arg-type]
        pools=bounds,
    )


def _parse_routing(reader: _Reader) -> Routing:
    reader.unknown({"enabled", "gatewayRef", "hostnames"})
    gateway = reader.child("gatewayRef")
    gateway.unknown({"name", "namespace"})
    enabled = reader.boolean("enabled", False)
    name = gateway.string("name", None)
    if enabled and name is None:
        reader.problem("gatewayRef.name", "is required when routing is enabled")
    return Routing(
        enabled=enabled,
        gateway_name=name,
        gateway_namespace=gateway.string("namespace", None),
        hostnames=reader.strings("hostnames"),
    )


_SPEC_FIELDS = {
    "model", "engine", "image", "voices", "emotions", "pools", "scaling", "schedule",
    "routing", "paused",
}


def parse_spec(data: object, path: str = "spec") -> TTSServiceSpec:
    """Build a spec from a mapping: either the whole resource or just its ``spec``."""
    if not isinstance(data, Mapping):
        raise SpecError([f"{path}: must be a mapping, got {type(data).__name__}"])
    if "spec" in data and ("kind" in data or "apiVersion" in data):
        kind = data.get("kind", "TTSService")
        if kind != "TTSService":
            raise SpecError([f"kind: expected TTSService, got {kind!r}"])
        data = data["spec"]
        if not isinstance(data, Mapping):
            raise SpecError([f"{path}: must be a mapping, got {type(data).__name__}"])
    problems: list[str] = []
    reader = _Reader(data, path, problems)
    reader.unknown(_SPEC_FIELDS)
    pools = _parse_pools(reader)
    scaling = _parse_scaling(reader.child("scaling"), pools)
    schedule = _parse_schedule(reader.child("schedule"), pools)
    routing = _parse_routing(reader.child("routing"))
    engine = reader.choice("engine", "modelscope", ENGINES)
    spec = TTSServiceSpec(
        pools=pools,
        scaling=scaling,
        schedule=schedule,
        routing=routing,
        paused=reader.boolean("paused", False),
        model=reader.string("model", TTSServiceSpec.model) or TTSServiceSpec.model,
        engine=engine,
        image=reader.string("image", TTSServiceSpec.image) or TTSServiceSpec.image,
        voices=reader.strings("voices"),
        emotions=reader.strings("emotions"),
    )
    if problems:
        raise SpecError(problems)
    return spec


def load_spec(text: str, source: str = "spec") -> TTSServiceSpec:
    """Parse YAML text (one document) into a spec. ``source`` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        detail = getattr(exc, "problem", None)
        raise SpecError([f"{source}: not valid YAML{where}" + (f": {detail}" if detail else "")]
                        ) from None
    if not isinstance(data, Mapping):
        raise SpecError([f"{source}: the YAML must be a mapping, got {type(data).__name__}"])
    return parse_spec(data)
