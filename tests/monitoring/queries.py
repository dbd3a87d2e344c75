"""Every PromQL expression a user runs through the chart: the dashboard's panels, variables
and annotations, and the PrometheusRule's recording rules and alerts, as the chart
renders them. `selectors` reads each one with a real PromQL parser (promql-parser) to list
the metric names and labels it needs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import promql_parser

from tests.chart import chart_files as cf

DASHBOARD = cf.CHART / "files" / "dashboard.json"
# What Grafana puts in place of its variables before a query reaches Prometheus.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h",
    "$namespace": ".*", "$service": ".*",
}
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.*),\s*(?P<label>\w+)\)$")


@dataclass(frozen=True)
class Query:
    where: str  # "panel 'Offered load' A", "alert ElasticTTSOperatorDown", ...
    expr: str  # as Prometheus receives it
    # Labels a Grafana variable reads off the result (label_values(selector, label)).
    reads_labels: tuple[str, ...] = ()


def concrete(expr: str) -> str:
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    return expr


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return loaded


def dashboard_queries() -> list[Query]:
    board = dashboard()
    queries = [Query(f"panel {p['title']!r} {t['refId']}", concrete(t["expr"]))
               for p in board["panels"] for t in p["targets"]]
    queries += [Query(f"annotation {a['name']!r}", concrete(a["expr"]))
                for a in board["annotations"]["list"] if "expr" in a]
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        found = LABEL_VALUES.match(variable["query"]["query"])
        assert found, f"variable {variable['name']}: only label_values(selector, label) is used"
        queries.append(Query(f"variable {variable['name']}", concrete(found["selector"]),
                             (found["label"],)))
    return queries


def rule_groups(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    values = dict(values or {})
    values["prometheusRule"] = {**values.get("prometheusRule", {}), "enabled": True}
    (rule,) = cf.of_kind(cf.objects(values), "PrometheusRule")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def rule_queries() -> list[Query]:
    return [Query(f"{'alert ' + r['alert'] if 'alert' in r else 'record ' + r['record']}",
                  r["expr"]) for g in rule_groups() for r in g["rules"]]


def recorded_names() -> set[str]:
    return {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}


@dataclass
class Selector:
    metric: str
    matchers: list[tuple[str, str, str]]  # (label, op, value): op is =, !=, =~, !~
    grouped_by: set[str] = field(default_factory=set)  # labels an enclosing `by` needs


_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def selectors(expr: str) -> list[Selector]:
    """Each vector selector of `expr`, with the `by (...)` labels of every aggregation
    around it (those labels must exist on its series, or the grouping is empty)."""
    found: list[Selector] = []
    grouping: list[set[str]] = []  # one entry per enclosing aggregation

    def enter(node: Any) -> None:
        if isinstance(node, promql_parser.AggregateExpr):
            modifier = node.modifier
            by = modifier is not None and modifier.type == promql_parser.AggModifierType.By
            grouping.append(set(node.modifier.labels) if by else set())
        elif isinstance(node, promql_parser.VectorSelector):
            matchers = [(m.name, _OPS[str(m.op).rsplit(".", 1)[-1]], m.value)
                        for m in node.matchers.matchers if m.name != "__name__"]
            found.append(Selector(node.name, matchers, set().union(*grouping)))

    def leave(node: Any) -> None:
        if isinstance(node, promql_parser.AggregateExpr):
            grouping.pop()

    promql_parser.walk(promql_parser.parse(expr), enter, leave)
    return found
