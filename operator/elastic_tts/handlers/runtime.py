"""The process-wide wiring: one cluster client, one Prometheus client, one Ticker.

Built on first use from the environment (in-cluster service account or kubeconfig);
`configure` lets the CLI and tests choose the settings before the operator starts.
"""

from __future__ import annotations

import threading

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.adapters.prometheus import PrometheusMetrics
from elastic_tts.reconcile.tick import Ticker, TickSettings

_lock = threading.Lock()
_settings = TickSettings()
_ticker: Ticker | None = None


def configure(settings: TickSettings) -> None:
    """Choose tick settings; drops the current wiring so the next use rebuilds it."""
    global _settings, _ticker
    with _lock:
        _settings = settings
        _ticker = None


def ticker() -> Ticker:
    global _ticker
    with _lock:
        if _ticker is None:
            _ticker = Ticker(PykubeCluster.from_env(), PrometheusMetrics(), _settings)
        return _ticker
