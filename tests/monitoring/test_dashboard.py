"""The Grafana dashboard: data source, namespace and service variables; a unit, a
description and the data source variable on every panel; every query scoped by namespace
and service; the panels and annotations a user of the operator looks for."""

from __future__ import annotations

import re

from tests.monitoring import queries as q

BOARD = q.dashboard()
TARGETS = [(p["title"], t["expr"]) for p in BOARD["panels"] for t in p["targets"]]


def test_datasource_namespace_and_service_variables() -> None:
    variables = {v["name"]: v for v in BOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "service"):
        assert variables[name]["type"] == "query"
        assert variables[name]["multi"] and variables[name]["includeAll"]
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    assert '$namespace' in variables["service"]["query"]["query"]  # services of those namespaces


def test_every_panel_has_a_unit_a_description_and_the_datasource() -> None:
    for panel in BOARD["panels"]:
        assert panel["description"].strip(), panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    assert len({p["id"] for p in BOARD["panels"]}) == len(BOARD["panels"])


def test_every_query_is_scoped_by_namespace_and_service() -> None:
    for title, expr in TARGETS:
        for selector in q.selectors(q.concrete(expr.replace("$namespace", "NS")
                                                .replace("$service", "SVC"))):
            assert ("namespace", "=~", "NS") in selector.matchers, (title, selector.metric)
            assert ("service", "=~", "SVC") in selector.matchers, (title, selector.metric)


def test_the_slo_panel_uses_the_per_100_character_slo_and_no_fixed_bucket() -> None:
    (slo,) = [p for p in BOARD["panels"] if "SLO" in p["title"]]
    (target,) = slo["targets"]
    assert "tts_requests_within_slo_total" in target["expr"]
    assert not any(re.search(r'\ble\s*=', expr) for _, expr in TARGETS)
    assert "slo" not in {v["name"] for v in BOARD["templating"]["list"]}


def test_the_panels_a_user_looks_for() -> None:
    def panel_reading(metric: str) -> str:
        titles = [t for t, expr in TARGETS if metric in expr]
        assert titles, f"no panel reads {metric}"
        return titles[0]

    for metric in ("elastic_tts_spot_fallback", "tts_refusals_total", "tts_queue_depth",
                   "tts_time_to_first_audio_seconds_bucket",
                   "elastic_tts_estimated_cost_per_hour", "elastic_tts_desired_replicas",
                   "tts_characters_total", "elastic_tts_demand"):
        panel_reading(metric)


def test_operator_events_are_annotations() -> None:
    (events,) = [a for a in BOARD["annotations"]["list"] if "expr" in a]
    assert "elastic_tts_events_total" in events["expr"]
    assert events["datasource"]["uid"] == "${datasource}"
    assert events["titleFormat"] == "{{reason}}"
    assert events["enable"] is True
