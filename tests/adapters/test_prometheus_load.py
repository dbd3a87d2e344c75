"""The Prometheus LoadSource against a real Prometheus scraping the test exporter: rates
by pool and window, the admission signals (and workers that export none), one namespace
at a time, the spec's query override, and a Prometheus that cannot be asked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from elastic_tts.adapters.prometheus import PrometheusLoadSource, builtin_query
from elastic_tts.policy.spec import PrometheusSource
from elastic_tts.reconcile.ports import LoadQuery, MetricsUnavailable, WindowLoad
from elastic_tts_dev.processes import free_port
from elastic_tts_dev.prometheus import Exporter, Prometheus

WINDOWS = ("4s", "8s")


@pytest.fixture(scope="module")
def prometheus() -> Iterator[Prometheus]:
    exporter = Exporter("prod")
    exporter.set_load("tts", "gpu", 300)
    exporter.set_load("tts", "cpu", 50)
    exporter.set_load("tts", "gpu", 7, namespace="staging")  # same name, other namespace
    exporter.set_admission("tts", "cpu", refusals_per_second=0.5, backlog_characters=400,
                           queue_depth=3)
    exporter.set_load("legacy", "gpu", 40, admission=False)  # workers before ADMISSION.md
    prom = Prometheus(exporter.port)
    # Rates over the longer window are true once it holds only fed samples: the window,
    # plus a scrape at each end (1 s apart), plus slack for a shared machine.
    time.sleep(8 + 2 + 2)
    try:
        yield prom
    finally:
        prom.close()
        exporter.close()


def ask(prometheus: Prometheus, namespace: str = "prod", query: str | None = None,
        metric: str = "characters", service: str = "tts") -> dict[str, WindowLoad]:
    source = PrometheusSource(url=prometheus.url, query=query, timeout_seconds=2)
    return PrometheusLoadSource().load(
        LoadQuery(namespace, service, metric, WINDOWS, source))  # type: ignore[arg-type]


def test_rates_by_pool_and_window(prometheus: Prometheus) -> None:
    loads = ask(prometheus)
    assert set(loads) == set(WINDOWS)
    for window in loads.values():
        assert window.pool("gpu").characters == pytest.approx(300, rel=0.25)
        assert window.pool("cpu").characters == pytest.approx(50, rel=0.25)
        assert window.pool("gpu").requests == pytest.approx(3, rel=0.25)  # 100 chars each
        assert window.pool("gpu").refusals == 0  # the exporter refuses nothing


def test_admission_signals_by_pool(prometheus: Prometheus) -> None:
    for window in ask(prometheus).values():
        cpu = window.pool("cpu")
        assert cpu.refusals == pytest.approx(0.5, rel=0.25)
        assert cpu.backlog_characters == pytest.approx(400)
        assert cpu.queue_depth == pytest.approx(3)
        assert window.admission("refusals") == pytest.approx(0.5, rel=0.25)  # gpu's: 0
        assert window.admission("backlog_characters") == pytest.approx(400)


def test_workers_without_admission_series_read_as_unobserved(prometheus: Prometheus) -> None:
    legacy = ask(prometheus, service="legacy")["8s"]
    assert legacy.pool("gpu").characters == pytest.approx(40, rel=0.25)
    assert legacy.pool("gpu").refusals is None  # not exported: not the same as zero
    assert legacy.admission("refusals") is None
    assert legacy.admission("backlog_characters") is None


def test_one_namespace_at_a_time(prometheus: Prometheus) -> None:
    staging = ask(prometheus, namespace="staging")["4s"]
    assert set(staging.pools) == {"gpu"}
    assert staging.pool("gpu").characters == pytest.approx(7, rel=0.35)


def test_an_override_replaces_the_scaled_signal(prometheus: Prometheus) -> None:
    loads = ask(prometheus, query='sum(rate($metric{namespace="$namespace",'
                                  'service="$service",pool="cpu"}[$window]))')
    short = loads["4s"]
    assert short.total("characters") == pytest.approx(50, rel=0.25)  # no pool label: ""
    assert short.pool("gpu").requests == pytest.approx(3, rel=0.25)  # the rest: built in


def test_one_round_trip_carries_every_signal_of_both_windows() -> None:
    query = LoadQuery("prod", "tts", "characters", ("1m", "5m"), PrometheusSource())
    text = builtin_query(query, query.windows)
    assert text.count(' or ') == 9 and text.count('namespace="prod",service="tts"') == 10
    assert text.count('"window", "1m"') == 5 and text.count('"window", "5m"') == 5


def test_a_tick_asks_prometheus_once(prometheus: Prometheus) -> None:
    source = PrometheusLoadSource()
    asked: list[str] = []
    instant = source.instant

    def counting(url: str, query: str, timeout: float) -> Any:
        asked.append(query)
        return instant(url, query, timeout)

    source.instant = counting  # type: ignore[method-assign]
    loads = source.load(LoadQuery("prod", "tts", "characters", WINDOWS,
                                  PrometheusSource(url=prometheus.url, timeout_seconds=2)))
    assert len(asked) == 1
    for window in WINDOWS:  # each window's series went to its own window
        assert loads[window].pool("gpu").characters == pytest.approx(300, rel=0.25)


def test_a_prometheus_that_cannot_be_asked() -> None:
    source = PrometheusSource(url=f"http://127.0.0.1:{free_port()}", timeout_seconds=1)
    with pytest.raises(MetricsUnavailable, match="connection refused or unreachable"):
        PrometheusLoadSource().load(LoadQuery("prod", "tts", "characters", WINDOWS, source))
