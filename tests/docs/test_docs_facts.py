"""Every flag, metric, status field, worker setting and make target the README and docs/
name exists in the code (tests/docs/facts.py says where each is looked up)."""

from __future__ import annotations

import pytest

from tests.docs import facts

PAGES = facts.doc_pages()


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(facts.ROOT)) for p in PAGES])
def test_every_name_a_page_mentions_exists(page: facts.Path) -> None:
    found = facts.mentions(page.read_text("utf-8"), str(page.relative_to(facts.ROOT)))
    assert facts.problems(found) == []


def _named(page: str, kind: str) -> set[str]:
    text = (facts.ROOT / page).read_text("utf-8")
    return {m.name for m in facts.mentions(text, page) if m.kind == kind}


def _series(prefix: str) -> set[str]:
    return {m for m in facts.metric_names() if m.startswith(prefix)
            and not m.endswith(("_created", "_bucket", "_sum", "_count"))}


def test_the_worker_page_documents_every_setting_and_every_worker_series() -> None:
    # TTS_RUNTIME_DIR is the gunicorn master's own hand-off to its processes, not a setting.
    assert facts.worker_settings() - {"TTS_RUNTIME_DIR"} - _named("docs/worker.md",
                                                                   "setting") == set()
    assert _series("tts_") - _named("docs/worker.md", "metric") == set()


def test_the_monitoring_page_documents_every_operator_series() -> None:
    assert _series("elastic_tts_") - _named("docs/monitoring.md", "metric") == set()


def test_the_pages_name_enough_of_each_kind_for_the_check_to_mean_something() -> None:
    found = [m for page in PAGES
             for m in facts.mentions(page.read_text("utf-8"), page.name)]
    kinds = {kind: {m.name for m in found if m.kind == kind}
             for kind in ("flag", "metric", "status", "setting", "make")}
    assert len(kinds["flag"]) >= 30 and len(kinds["status"]) >= 20
    assert {"demo", "test", "test-all", "bench", "images"} <= kinds["make"]


BOGUS_PAGE = """\
Run `elastic-tts simulate --seeed 3`, then:

```sh
elastic-tts explain --spec a.yaml --load 1 --trace day.csv
helm install elastic-tts charts/elastic-tts --namespace tts --frobnicate
make nonsense
make test PYTEST_ARGS="-k x" && make demo
```

The cost panel reads `elastic_tts_cost_per_hour` and `tts_requests_count`; the column is
`.status.pools.<pool>.readyReplicas`, set `TTS_MAX_CHAR=300`.
"""


def test_bogus_names_are_caught_each_where_it_is() -> None:
    found = facts.mentions(BOGUS_PAGE, "bogus.md")
    assert sorted(facts.problems(found)) == sorted([
        "bogus.md:1: flag --seeed: `elastic-tts simulate` has no --seeed",
        "bogus.md:4: flag --trace: `elastic-tts explain` has no --trace",
        "bogus.md:5: flag --frobnicate: no command has --frobnicate",
        "bogus.md:10: metric elastic_tts_cost_per_hour: no exporter has "
        "elastic_tts_cost_per_hour",
        "bogus.md:10: metric tts_requests_count: no exporter has tts_requests_count",
        "bogus.md:11: status status.pools.<pool>.readyReplicas: the status schema has no "
        "status.pools.<pool>.readyReplicas",
        "bogus.md:11: setting TTS_MAX_CHAR: the worker has no setting TTS_MAX_CHAR",
        "bogus.md:6: make nonsense: the Makefile has no target nonsense",
    ])


def test_real_names_in_the_same_places_pass() -> None:
    page = BOGUS_PAGE.replace("--seeed", "--seed").replace(" --trace day.csv", "").replace(
        " --frobnicate", "").replace("make nonsense", "make bench").replace(
        "elastic_tts_cost_per_hour", "elastic_tts_estimated_cost_per_hour").replace(
        "tts_requests_count", "tts_request_duration_seconds_count").replace(
        "readyReplicas", "ready").replace("TTS_MAX_CHAR=", "TTS_MAX_CHARS=")
    found = facts.mentions(page, "fixed.md")
    assert facts.problems(found) == []
    # The same mentions, less the two flags taken out.
    assert len(found) == len(facts.mentions(BOGUS_PAGE, "bogus.md")) - 2


def test_a_status_path_is_walked_through_maps_lists_and_free_form_memory() -> None:
    assert facts.status_path_exists(["pools", "gpu-spot", "spotBackoffUntil"])
    assert facts.status_path_exists(["conditions", "[type=Ready]", "lastTransitionTime"])
    assert facts.status_path_exists(["engine", "memory", "anything"])
    assert not facts.status_path_exists(["mode", "extra"])
    assert not facts.status_path_exists(["conditions", "reason"])  # a list, not an object


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(facts.ROOT)) for p in PAGES])
def test_every_link_between_the_pages_lands(page: facts.Path) -> None:
    assert facts.broken_links(page) == []


def test_a_broken_link_is_caught(tmp_path: facts.Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## 2. Spot: fallback and return\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#2-spot-fallback-and-return) [bad](other.md#nope) "
                    "[gone](missing.md) [web](https://example.com/#x)\n")
    assert facts.broken_links(page) == ["other.md#nope: no such heading",
                                        "missing.md: no such file"]


def test_every_other_tools_flag_is_one_a_page_uses() -> None:
    used = {m.name for page in PAGES for m in facts.mentions(page.read_text("utf-8"), "")
            if m.kind == "flag" and m.command is None}
    assert facts.OTHER_TOOLS_FLAGS - used == set()
