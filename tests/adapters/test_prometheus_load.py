"""The Prometheus LoadSource against a real Prometheus scraping the test exporter: rates
by pool and window, the admission signals (and workers that export none), one namespace
at a time, the spec's query override, one answer for a namespace's services while it is
fresh, and a Prometheus that cannot be asked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
    text = builtin_query("prod", ("1m", "5m"))
    assert text.count(' or ') == 9 and text.count('{namespace="prod"}') == 10
    assert text.count("sum by (service, pool)") == 10
    assert text.count('"window", "1m"') == 5 and text.count('"window", "5m"') == 5


def counted(source: PrometheusLoadSource) -> list[str]:
    """The queries `source` sends from now on."""
    asked: list[str] = []
    instant = source.instant

    def counting(url: str, query: str, timeout: float) -> Any:
        asked.append(query)
        return instant(url, query, timeout)

    source.instant = counting  # type: ignore[method-assign]
    return asked


def test_a_namespace_s_ticks_share_one_answer_while_it_is_fresh(prometheus: Prometheus
                                                                 ) -> None:
    clock = [0.0]
    source = PrometheusLoadSource(clock=lambda: clock[0])
    asked = counted(source)
    settings = PrometheusSource(url=prometheus.url, timeout_seconds=2)
    # Windows of 4 s and 8 s: an answer serves for a second (a quarter of 4 s).
    windows = WINDOWS
    tts = source.load(LoadQuery("prod", "tts", "characters", windows, settings))
    legacy = source.load(LoadQuery("prod", "legacy", "characters", windows, settings))
    assert len(asked) == 1
    for window in windows:  # each service's and each window's series went to their own
        assert tts[window].pool("gpu").characters == pytest.approx(300, rel=0.25)
        assert legacy[window].pool("gpu").characters == pytest.approx(40, rel=0.25)
    source.load(LoadQuery("staging", "tts", "characters", windows, settings))
    assert len(asked) == 2  # another namespace, another answer
    clock[0] += 0.9
    source.load(LoadQuery("prod", "legacy", "characters", windows, settings))
    assert len(asked) == 2
    clock[0] += 0.1
    source.load(LoadQuery("prod", "tts", "characters", windows, settings))
    assert len(asked) == 3  # a quarter of the shortest window old: asked again


def test_a_tick_with_an_override_asks_for_it_itself(prometheus: Prometheus) -> None:
    source = PrometheusLoadSource()
    asked = counted(source)
    override = 'sum(rate($metric{namespace="$namespace",service="$service"}[$window]))'
    settings = PrometheusSource(url=prometheus.url, timeout_seconds=2, query=override)
    for service in ("tts", "legacy"):
        source.load(LoadQuery("prod", service, "characters", WINDOWS, settings))
    # The built-in answer once; each override once per window and service.
    assert len(asked) == 1 + 2 * len(WINDOWS)
    assert sum('service="legacy"' in q for q in asked) == len(WINDOWS)


def test_a_prometheus_that_cannot_be_asked() -> None:
    source = PrometheusSource(url=f"http://127.0.0.1:{free_port()}", timeout_seconds=1)
    with pytest.raises(MetricsUnavailable, match="connection refused or unreachable"):
        PrometheusLoadSource().load(LoadQuery("prod", "tts", "characters", WINDOWS, source))


def test_a_failed_ask_answers_the_namespace_s_ticks_until_it_is_stale() -> None:
    clock = [0.0]
    source = PrometheusLoadSource(clock=lambda: clock[0])
    asked = counted(source)
    settings = PrometheusSource(url=f"http://127.0.0.1:{free_port()}", timeout_seconds=1)
    for service in ("a", "b"):  # the second tick does not wait out a timeout of its own
        with pytest.raises(MetricsUnavailable, match="connection refused or unreachable"):
            source.load(LoadQuery("prod", service, "characters", WINDOWS, settings))
    assert len(asked) == 1
    clock[0] += 1.0
    with pytest.raises(MetricsUnavailable):
        source.load(LoadQuery("prod", "a", "characters", WINDOWS, settings))
    assert len(asked) == 2


def test_ticks_read_the_old_answer_while_one_asks_again() -> None:
    clock = [0.0]
    source = PrometheusLoadSource(clock=lambda: clock[0])
    answers = [[({"service": "tts", "pool": "gpu", "signal": "characters", "window": w},
                 value) for w in WINDOWS] for value in (100.0, 200.0)]
    asking, release = threading.Event(), threading.Event()

    def instant(url: str, query: str, timeout: float) -> Any:
        if not answers[1:]:  # the second ask: held until the test lets it answer
            asking.set()
            assert release.wait(10)
        return answers.pop(0)

    source.instant = instant  # type: ignore[method-assign]
    settings = PrometheusSource(url="http://127.0.0.1:9", timeout_seconds=1)

    def gpu() -> float:
        loads = source.load(LoadQuery("prod", "tts", "characters", WINDOWS, settings))
        return loads["4s"].pool("gpu").characters

    assert gpu() == 100.0
    clock[0] += 1.0
    with ThreadPoolExecutor(1) as pool:
        refreshed = pool.submit(gpu)
        assert asking.wait(10)
        assert gpu() == 100.0  # read at once, while the new answer is on its way
        release.set()
        assert refreshed.result(10) == 200.0
    assert gpu() == 200.0
