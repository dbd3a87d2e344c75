"""The Grafana dashboard (charts/elastic-tts/files/dashboard.json), built here so that every
panel has a datasource, a unit and a description by construction. `make manifests` writes
it; tests/monitoring checks every query against the real exporters and promtool.

Worker series (tts_*) and operator series (elastic_tts_*) are both selected by
`namespace` and `service`, the labels of the metrics contract.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SELECT = 'namespace=~"$namespace", service=~"$service"'
RATE = "$__rate_interval"
# Answers that count towards the SLO: audio, refusals and server errors. Client errors
# (400, 413, ...) are the caller's fault and spend no error budget.
ANSWERED = f'tts_requests_total{{{SELECT}, status=~"2..|429|5.."}}'
WITHIN_SLO = f"tts_requests_within_slo_total{{{SELECT}}}"
WHO = "{{namespace}}/{{service}}"  # the legend of a series of one TTSService


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"
    defaults: dict[str, Any] = field(default_factory=dict)


def _by(labels: str, metric: str, function: str = "") -> str:
    inner = f"{function}({metric}[{RATE}])" if function else metric
    return f"sum by ({labels}) ({inner})"


def _quantiles(metric: str) -> tuple[Query, ...]:
    return tuple(
        Query(f"histogram_quantile({q}, sum by (le, namespace, service) "
              f"(rate({metric}_bucket{{{SELECT}}}[{RATE}])))", f"{WHO} p{int(q * 100)}")
        for q in (0.5, 0.95, 0.99))


PANELS: tuple[Panel, ...] = (
    Panel("Offered load",
          "Characters per second of new requests (retries are not counted again), the "
          "operator's default demand signal (tts_characters_total).",
          "suffix: chars/s",
          (Query(_by("namespace, service", f"tts_characters_total{{{SELECT}}}", "rate"), WHO),)),
    Panel("Answers by status",
          "Every answer per second, retries included, by HTTP status (tts_requests_total). "
          "429 is a refusal by admission, 503 a draining or loading worker.",
          "reqps",
          (Query(_by("namespace, service, status", f"tts_requests_total{{{SELECT}}}", "rate"),
                 f"{WHO} {{{{status}}}}"),)),
    Panel("SLO attainment (per-100-character SLO)",
          "Share of answers that were audio within the SLO for their length: "
          "latencySLOSeconds x max(1, characters/100). Refusals and 5xx count as misses, "
          "client errors not at all. Target line: the objective of your PrometheusRule.",
          "percentunit",
          (Query(f"sum by (namespace, service) (rate({WITHIN_SLO}[{RATE}])) / "
                 f"sum by (namespace, service) (rate({ANSWERED}[{RATE}]))", WHO),),
          defaults={"min": 0, "max": 1}),
    Panel("Refusals by reason",
          "Requests the workers refused per second (tts_refusals_total): queue_full and slo "
          "(admission: the wait plus the service time would miss the SLO), draining, "
          "loading. Sustained refusals mean too little capacity.",
          "reqps",
          (Query(_by("namespace, service, reason", f"tts_refusals_total{{{SELECT}}}", "rate"),
                 f"{WHO} {{{{reason}}}}"),)),
    Panel("Latency p50 / p95 / p99",
          "Seconds from arrival to audio of successful requests, whatever their length "
          "(tts_request_duration_seconds). The SLO panel accounts for length.",
          "s", _quantiles("tts_request_duration_seconds")),
    Panel("Time to first audio p50 / p95 / p99",
          "Seconds from arrival to the first audio byte (tts_time_to_first_audio_seconds); "
          "streamed answers start long before they end.",
          "s", _quantiles("tts_time_to_first_audio_seconds")),
    Panel("Queue depth",
          "Requests admitted and waiting for a synthesis slot, per pool (tts_queue_depth).",
          "short",
          (Query(_by("namespace, service, pool", f"tts_queue_depth{{{SELECT}}}"),
                 f"{WHO}/{{{{pool}}}}"),)),
    Panel("Backlog",
          "Characters admitted and not yet synthesised, per pool (tts_backlog_characters).",
          "suffix: chars",
          (Query(_by("namespace, service, pool", f"tts_backlog_characters{{{SELECT}}}"),
                 f"{WHO}/{{{{pool}}}}"),)),
    Panel("Expected wait",
          "The wait a new request would have now before a slot serves it, the longest of "
          "any worker process in the pool (tts_expected_wait_seconds).",
          "s",
          (Query(f"max by (namespace, service, pool) (tts_expected_wait_seconds{{{SELECT}}})",
                 f"{WHO}/{{{{pool}}}}"),)),
    Panel("Desired replicas per pool",
          "Replicas the operator's last decision wants, per pool "
          "(elastic_tts_desired_replicas).",
          "short",
          (Query(_by("namespace, service, pool", f"elastic_tts_desired_replicas{{{SELECT}}}"),
                 f"{WHO}/{{{{pool}}}}"),)),
    Panel("Worker pods scraped per pool",
          "Worker pods Prometheus scrapes, per pool (tts_engine_info). Fewer than desired: "
          "pods are starting, Pending or not scraped.",
          "short",
          (Query("count by (namespace, service, pool) "
                 "(count by (namespace, service, pool, instance) "
                 f"(tts_engine_info{{{SELECT}}}))", f"{WHO}/{{{{pool}}}}"),)),
    Panel("Demand and capacity",
          "What the engine sized for (load / targetUtilization) against the capacity of the "
          "desired replicas, in the spec's metric unit per second. Demand above capacity "
          "means every pool that can serve is at its ceiling.",
          "short",
          (Query(f"max by (namespace, service) (elastic_tts_demand{{{SELECT}}})", f"{WHO} demand"),
           Query(f"max by (namespace, service) (elastic_tts_capacity{{{SELECT}}})",
                 f"{WHO} capacity"))),
    Panel("Spot fallback",
          "1 while a spot pool is backed off and its fallbackTo pool covers it "
          "(elastic_tts_spot_fallback).",
          "bool",
          (Query(f"max by (namespace, service, pool) (elastic_tts_spot_fallback{{{SELECT}}})",
                 f"{WHO}/{{{{pool}}}}"),),
          defaults={"min": 0, "max": 1, "custom": {"lineInterpolation": "stepAfter"}}),
    Panel("Estimated cost per hour",
          "Cost per hour of the desired replicas, from each pool's costPerHour "
          "(elastic_tts_estimated_cost_per_hour).",
          "currencyUSD",
          (Query(_by("namespace, service", f"elastic_tts_estimated_cost_per_hour{{{SELECT}}}"),
                 WHO),)),
    Panel("Decisions by mode",
          "Engine decisions per second by the mode they left the service in "
          "(elastic_tts_decisions_total): peak, off-peak, fallback, cpu-only, shutdown, "
          "paused.",
          "ops",
          (Query(_by("namespace, service, mode", f"elastic_tts_decisions_total{{{SELECT}}}",
                     "rate"),
                 f"{WHO} {{{{mode}}}}"),)),
    Panel("Reconcile errors by kind",
          "Failed reconcile steps per second (elastic_tts_reconcile_errors_total): Conflict "
          "and ApiError are retried, InvalidSpec waits for a spec change, Unexpected is a "
          "bug worth reporting.",
          "ops",
          (Query(_by("namespace, service, kind", f"elastic_tts_reconcile_errors_total{{{SELECT}}}",
                     "rate"), f"{WHO} {{{{kind}}}}"),)),
    Panel("Conditions",
          "Status conditions of each TTSService, 1 for True (elastic_tts_condition): Ready, "
          "MetricsAvailable, SpotFallback, Paused, InvalidSpec.",
          "bool",
          (Query(f"max by (namespace, service, condition) (elastic_tts_condition{{{SELECT}}})",
                 f"{WHO} {{{{condition}}}}"),),
          defaults={"min": 0, "max": 1, "custom": {"lineInterpolation": "stepAfter"}}),
)

# The operator's Events (ScaledUp, SpotFallback, ...) as annotations on every panel.
EVENTS_EXPR = (f"sum by (namespace, service, reason) "
               f"(increase(elastic_tts_events_total{{{SELECT}}}[2m])) > 0")


def _variables() -> list[dict[str, Any]]:
    def query(name: str, label: str, expr: str) -> dict[str, Any]:
        return {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
                "query": {"query": expr, "refId": f"{name}-variable"}, "definition": expr,
                "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
                "sort": 1, "current": {"text": "All", "value": "$__all"}}

    return [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "current": {}},
        query("namespace", "Namespace", "label_values(elastic_tts_desired_replicas, namespace)"),
        query("service", "TTSService",
              'label_values(elastic_tts_desired_replicas{namespace=~"$namespace"}, service)'),
    ]


def _panel(index: int, panel: Panel) -> dict[str, Any]:
    width, height = 12, 8
    return {
        "id": index + 1,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": (index % 2) * width, "y": (index // 2) * height,
                    "w": width, "h": height},
        "fieldConfig": {"defaults": {"unit": panel.unit, **panel.defaults}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                    "tooltip": {"mode": "multi"}},
        "targets": [
            {"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": q.expr,
             "legendFormat": q.legend}
            for n, q in enumerate(panel.queries)
        ],
    }


def dashboard() -> dict[str, Any]:
    return {
        "title": "elastic-tts",
        "uid": "elastic-tts",
        "description": "Load, SLO, refusals, queues, replicas, spot fallback and cost of "
                       "every TTSService, from the workers' and the operator's metrics.",
        "schemaVersion": 39,
        "version": 2,
        "tags": ["elastic-tts", "tts"],
        "timezone": "browser",
        "refresh": "30s",
        "time": {"from": "now-24h", "to": "now"},
        "annotations": {"list": [
            {"builtIn": 1, "name": "Annotations & Alerts", "type": "dashboard",
             "datasource": {"type": "grafana", "uid": "-- Grafana --"},
             "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)"},
            {"name": "Operator events", "datasource": DATASOURCE, "enable": True,
             "iconColor": "orange", "expr": EVENTS_EXPR, "step": "1m",
             "titleFormat": "{{reason}}", "textFormat": f"{WHO}",
             "tagKeys": "reason,service", "useValueForTime": False},
        ]},
        "templating": {"list": _variables()},
        "panels": [_panel(i, p) for i, p in enumerate(PANELS)],
    }


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"
