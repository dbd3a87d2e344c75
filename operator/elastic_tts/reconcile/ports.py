"""The two ports the reconcile layer needs, and the errors they raise.

Adapters (`elastic_tts.adapters`) implement these with real clients; the reconcile code
depends only on the protocols, as Knative's decider depends on a pod counter and a
metric client. The load port speaks in rates, never in a query language: PromQL lives
in the Prometheus adapter alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

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


class Expired(ApiError):
    """410: a watch asked for a resourceVersion the API server no longer keeps; the
    watcher lists again."""


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


class WatchableCluster(Cluster, Protocol):
    """A Cluster that can also stream changes, as an informer needs: a list that says
    at which resourceVersion it was taken, and a watch from there. `selector` is a
    label selector in the API's own syntax (`key`, `key=value`, ...)."""

    def list_versioned(self, kind: Kind, namespace: str | None, selector: str,
                       page: int = 500, keep: Callable[[Manifest], Manifest] | None = None
                       ) -> tuple[list[Manifest], str]:
        """`keep`: what of each object to keep, applied page by page as they arrive."""
        ...

    def watch(self, kind: Kind, namespace: str | None, selector: str,
              resource_version: str, seconds: int) -> Iterator[tuple[str, Manifest]]:
        """(event type, object) until the server ends the stream after `seconds`;
        BOOKMARK events carry only the newest resourceVersion. Raises Expired (410)."""
        ...


@dataclass(frozen=True)
class LoadQuery:
    """Whose load, over which windows, and where to ask."""

    namespace: str
    service: str
    metric: Metric  # the signal the engine scales on
    windows: tuple[str, ...]  # rate windows, shortest first, as durations ("1m", "5m")
    source: PrometheusSource  # the spec's connection settings and optional query override


# The worker's admission signals (ADMISSION.md): None when the pool's workers export no
# such series (workers older than the admission contract), which is not the same as zero.
AdmissionSignal = Literal["refusals", "queue_depth", "backlog_characters"]


@dataclass(frozen=True)
class PoolLoad:
    """One pool's load over one window. A further signal is one more field here and one
    more entry in the adapter's table; the engine reads what it needs."""

    characters: float = 0.0  # offered characters per second (each request counted once)
    requests: float = 0.0  # offered requests per second
    refusals: float | None = None  # requests per second the workers refused (429 and 503)
    queue_depth: float | None = None  # requests admitted and waiting for a slot, mean
    backlog_characters: float | None = None  # characters admitted, not yet synthesised

    def of(self, metric: Metric) -> float:
        return self.characters if metric == "characters" else self.requests


@dataclass(frozen=True)
class WindowLoad:
    """Load by pool over one window. Series without a pool label count under ""."""

    pools: Mapping[str, PoolLoad] = field(default_factory=dict)

    def total(self, metric: Metric) -> float:
        return sum(load.of(metric) for load in self.pools.values())

    def admission(self, signal: AdmissionSignal) -> float | None:
        """The signal summed over the pools that export it; None when none does."""
        values = [v for load in self.pools.values()
                  if (v := getattr(load, signal)) is not None]
        return sum(values) if values else None

    def pool(self, name: str) -> PoolLoad:
        return self.pools.get(name, PoolLoad())


class LoadSource(Protocol):
    def load(self, query: LoadQuery) -> Mapping[str, WindowLoad]:
        """Load by window (every window of the query). An empty answer is no load; raises
        MetricsUnavailable when the source cannot be asked."""
        ...
