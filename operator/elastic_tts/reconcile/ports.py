"""The two ports the reconcile layer needs, and the errors they raise.

Adapters (`elastic_tts.adapters`) implement these with real clients; the reconcile code
depends only on the protocols, as Knative's decider depends on a pod counter and a
metric client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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


class Metrics(Protocol):
    def instant(self, url: str, query: str, timeout: float
                ) -> list[tuple[Mapping[str, str], float]]:
        """Run an instant PromQL query: one (labels, value) per series."""
        ...
