"""Every metric name and label the dashboard and the alert rules use is one the real
operator or the real worker exports; promtool lints both expositions, evaluates every
query against a Prometheus that scraped them, and the rules evaluate there without error.

Nothing here lists what the exporters export: the expected names come from the queries,
the actual ones from the scrapes.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest
import requests
import yaml

from tests.cluster.fixtures import Installation
from tests.monitoring import exporters as ex
from tests.monitoring import queries as q
from tests.required import tool

# Every scrape adds these to every series (Prometheus' target labels).
TARGET_LABELS = {"job", "instance"}
QUERIES = q.dashboard_queries() + q.rule_queries()
LITERAL_ALTERNATIVES = re.compile(r"^[A-Za-z0-9_-]+(\|[A-Za-z0-9_-]+)*$")


def promtool() -> str:
    return tool("promtool")


@pytest.fixture(scope="module")
def exporters(installed: Installation, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[ex.Exporters]:
    folder = tmp_path_factory.mktemp("monitoring")
    rules = folder / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": q.rule_groups()}))
    found, stoppers = ex.start(installed, folder, rules)
    yield found
    for stop in stoppers:
        stop()


def problems_of(query: q.Query, samples: dict[str, list[dict[str, str]]]) -> list[str]:
    """What `query` needs that no exporter provides."""
    problems = []
    recorded = q.recorded_names()
    selectors = q.selectors(query.expr)
    for selector in selectors:
        if selector.metric in recorded:
            continue  # made by a recording rule of the same PrometheusRule
        series = samples.get(selector.metric)
        if not series:
            problems.append(f"{selector.metric}: no exporter has samples of it")
            continue
        labels = set().union(*(s.keys() for s in series)) | TARGET_LABELS
        needed = {m[0] for m in selector.matchers} | selector.grouped_by
        if len(selectors) == 1:
            needed |= set(query.reads_labels)
        problems += [f"{selector.metric}: no label {label!r}" for label in sorted(needed - labels)]
        for label, op, value in selector.matchers:
            if op in ("=", "=~") and label in labels - TARGET_LABELS and \
                    LITERAL_ALTERNATIVES.match(value):
                seen = {s.get(label) for s in series}
                problems += [f"{selector.metric}: no series with {label}={wanted!r}"
                             for wanted in value.split("|") if wanted not in seen]
    return problems


@pytest.mark.parametrize("query", QUERIES, ids=[x.where for x in QUERIES])
def test_every_name_and_label_is_exported(exporters: ex.Exporters, query: q.Query) -> None:
    assert problems_of(query, exporters.samples()) == []


def test_the_check_notices_a_wrong_name_or_label(exporters: ex.Exporters) -> None:
    samples = exporters.samples()
    assert problems_of(q.Query("x", "elastic_tts_cost_per_hour"), samples) == [
        "elastic_tts_cost_per_hour: no exporter has samples of it"]
    assert problems_of(q.Query("x", 'sum by (zone) (elastic_tts_desired_replicas{pool="cpu"})'),
                       samples) == ["elastic_tts_desired_replicas: no label 'zone'"]
    assert problems_of(q.Query("x", 'elastic_tts_condition{condition="Happy"}'), samples) == [
        "elastic_tts_condition: no series with condition='Happy'"]


@pytest.mark.parametrize("which", ["operator", "worker"])
def test_promtool_lints_the_exposition(exporters: ex.Exporters, which: str) -> None:
    text = getattr(exporters, which).text
    done = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("query", QUERIES, ids=[x.where for x in QUERIES])
def test_promtool_evaluates_the_query(exporters: ex.Exporters, query: q.Query) -> None:
    done = subprocess.run([promtool(), "query", "instant", exporters.prometheus.url, query.expr],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_evaluate_cleanly_on_the_real_series(exporters: ex.Exporters) -> None:
    groups = requests.get(f"{exporters.prometheus.url}/api/v1/rules", timeout=5).json()[
        "data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == sum(len(g["rules"]) for g in q.rule_groups())
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def test_the_invalid_service_fires_nothing_before_its_time_but_is_pending(
        exporters: ex.Exporters) -> None:
    """The alerts see the real series: `broken` is InvalidSpec and `blind` has no metrics,
    so their alerts are pending (their `for` has not passed); none fires yet."""
    alerts = requests.get(f"{exporters.prometheus.url}/api/v1/alerts", timeout=5).json()[
        "data"]["alerts"]
    active = {(a["labels"]["alertname"], a["labels"].get("service")) for a in alerts}
    assert ("ElasticTTSInvalidSpec", "broken") in active
    assert ("ElasticTTSMetricsUnavailable", "blind") in active
    assert ("ElasticTTSOperatorDown", None) not in active
    assert all(a["state"] == "pending" for a in alerts)
