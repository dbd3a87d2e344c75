"""`Metrics` over prometheus-api-client: instant queries with a hard timeout.

One PrometheusConnect per URL, reused by every service's tick. Retries are off here:
the control loop itself retries on the next tick, and a slow Prometheus must not stretch
a tick past its interval.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from elastic_tts.reconcile.ports import MetricsUnavailable


class PrometheusMetrics:
    def __init__(self) -> None:
        self._clients: dict[str, PrometheusConnect] = {}
        self._lock = threading.Lock()

    def _client(self, url: str) -> PrometheusConnect:
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = PrometheusConnect(url=url,
                                           retry=Retry(total=0))
                self._clients[url] = client
            return client

    def instant(self, url: str, query: str, timeout: float
                ) -> list[tuple[Mapping[str, str], float]]:
        try:
            result = self._client(url).custom_query(query, timeout=timeout)
        except (requests.RequestException, PrometheusApiClientException) as exc:
            raise MetricsUnavailable(f"Prometheus at {url}: {_short(exc)}") from exc
        except (ValueError, KeyError) as exc:  # not JSON, or not a query answer
            raise MetricsUnavailable(f"Prometheus at {url}: bad answer ({exc})") from exc
        series: list[tuple[Mapping[str, str], float]] = []
        for item in result or []:
            try:
                series.append((dict(item.get("metric") or {}), float(item["value"][1])))
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise MetricsUnavailable(f"Prometheus at {url}: bad sample {item!r}") from exc
        return series


def _short(exc: Exception) -> str:
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or unreachable"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return str(exc)[:200]
