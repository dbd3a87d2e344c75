"""docs/troubleshooting.md explains every condition type and event reason the operator
uses, and each alert's runbook_url lands on the alert's own section."""

from __future__ import annotations

import re

import pytest

from elastic_tts.reconcile import reasons
from tests.chart import chart_files as cf
from tests.monitoring import queries as q

PAGE = cf.ROOT / "docs" / "troubleshooting.md"
TEXT = PAGE.read_text("utf-8")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _sections(level: str = "## ") -> dict[str, str]:
    """Heading -> body, for headings of the given level."""
    parts = re.split(rf"^{level}(.+)$", TEXT, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _subheadings(section: str) -> list[str]:
    return re.findall(r"^### (.+)$", _sections()[section], re.M)


def test_every_condition_type_has_a_section_with_its_reasons() -> None:
    assert set(_subheadings("Conditions")) == set(reasons.CONDITION_TYPES)
    reason_values = [v for k, v in vars(reasons).items()
                     if k.isupper() and isinstance(v, str) and v not in reasons.CONDITION_TYPES
                     and v not in reasons.EVENT_REASONS]
    for reason in reason_values:
        assert f"`{reason}`" in _sections()["Conditions"], reason


def test_every_event_reason_has_a_section() -> None:
    assert set(_subheadings("Events")) == set(reasons.EVENT_REASONS)


ALERTS = [r for g in q.rule_groups() for r in g["rules"] if "alert" in r]


@pytest.mark.parametrize("alert", ALERTS, ids=[a["alert"] for a in ALERTS])
def test_each_alert_links_its_own_runbook_section(alert: dict[str, str]) -> None:
    url = alert["annotations"]["runbook_url"]
    base, _, anchor = url.partition("#")
    assert base.endswith("/docs/troubleshooting.md")
    headings = _subheadings("Alerts")
    assert alert["alert"] in headings
    assert anchor == _slug(alert["alert"])
    body = _sections("### ")[alert["alert"]]
    for part in ("**Meaning.**", "**Diagnose.**", "**Fix.**"):
        assert part in body, (alert["alert"], part)


def test_the_alerts_section_has_no_runbook_without_an_alert() -> None:
    assert set(_subheadings("Alerts")) == {a["alert"] for a in ALERTS}


def test_in_page_links_point_at_headings() -> None:
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", TEXT, re.M)}
    for target in re.findall(r"\]\(#([^)]+)\)", TEXT):
        assert target in anchors, target
