"""The two ports the reconcile layer needs, and the errors they raise.

Adapters (`elastic_tts.adapters`) implement these with real clients; the reconcile code
depends only on the protocols, as Knative's decider depends on a pod counter and a
metric client. The load port speaks in rates, never in a query language: PromQL lives
in the Prometheus adapter alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from elastic_tts.policy.spec import Metric, PrometheusSource

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One API resource: ``apps/v1`` + ``deployments``."""

    api_version: str
    plural: str
    kind: str
    namespaced: bool = True


class ApiError(Exception):
    """The API server refused a request; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


class Conflict(ApiError):
    """409: the object changed under us or already exists; the caller retries."""


class MetricsUnavailable(Exception):
    """Prometheus did not answer, answered late, or answered with an error."""


class Cluster(Protocol):
    def get(self, kind: Kind, namespace: str | None, name: str,
            subresource: str | None = None) -> Manifest | None: ...

    def list(self, kind: Kind, namespace: str | None,
             labels: Mapping[str, str] | None = None) -> list[Manifest]: ...

    def create(self, kind: Kind, namespace: str | None, body: Manifest) -> Manifest: ...

    def patch(self, kind: Kind, namespace: str | None, name: str, patch: Manifest,
              subresource: str | None = None) -> Manifest: ...

    def delete(self, kind: Kind, namespace: str | None, name: str) -> bool: ...


@dataclass(frozen=True)
class LoadQuery:
    """Whose load, over which windows, and where to ask."""

    namespace: str
    service: str
    metric: Metric  # the signal the engine scales on
    windows: tuple[str, ...]  # rate windows, shortest first, as durations ("1m", "5m")
    source: PrometheusSource  # the spec's connection settings and optional query override


@dataclass(frozen=True)
class PoolLoad:
    """One pool's load over one window. A further signal is one more field here and one
    more entry in the adapter's table; the engine reads what it needs."""

    characters: float = 0.0  # offered characters per second (each request counted once)
    requests: float = 0.0  # offered requests per second
    refusals: float = 0.0  # requests per second the workers refused (429 and 503)
    queue_depth: float = 0.0  # requests admitted and waiting for a slot, mean
    backlog_characters: float = 0.0  # characters admitted, not yet synthesised, mean

    def of(self, metric: Metric) -> float:
        return self.characters if metric == "characters" else self.requests


@dataclass(frozen=True)
class WindowLoad:
    """Load by pool over one window. Series without a pool label count under ""."""

    pools: Mapping[str, PoolLoad] = field(default_factory=dict)

    def total(self, metric: Metric) -> float:
        return sum(load.of(metric) for load in self.pools.values())

    def pool(self, name: str) -> PoolLoad:
        return self.pools.get(name, PoolLoad())


class LoadSource(Protocol):
    def load(self, query: LoadQuery) -> Mapping[str, WindowLoad]:
        """Load by window (every window of the query). An empty answer is no load; raises
        MetricsUnavailable when the source cannot be asked."""
        ...
