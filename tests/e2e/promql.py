"""Questions the e2e tier asks the real Prometheus about what the workers measured."""

from __future__ import annotations

import math

import requests


def query(prometheus_url: str, promql: str) -> float:
    """An instant query that sums to one number; NaN when it has no series."""
    answer = requests.get(f"{prometheus_url}/api/v1/query", params={"query": promql},
                          timeout=5).json()
    if answer.get("status") != "success":
        raise AssertionError(f"Prometheus refused {promql!r}: {answer}")
    values = [float(item["value"][1]) for item in answer["data"]["result"]]
    return sum(values) if values else math.nan


def served_within(prometheus_url: str, service: str, bucket: str, window_seconds: float
                  ) -> tuple[float, float]:
    """(requests served within `bucket` seconds, requests served) over the last
    `window_seconds`, from the workers' tts_request_duration_seconds histogram."""
    window = f"{max(math.ceil(window_seconds), 2)}s"
    within = query(prometheus_url, "sum(increase(tts_request_duration_seconds_bucket"
                                   f'{{service="{service}",le="{bucket}"}}[{window}]))')
    total = query(prometheus_url, "sum(increase(tts_request_duration_seconds_count"
                                  f'{{service="{service}"}}[{window}]))')
    return within, total
