"""Fixtures of the operator tier: a real Prometheus scraping a test-driven exporter.
The cluster, the chart's installation, a namespace per test and the operator processes
come from tests/cluster/fixtures.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.operator.prom import Exporter, Prometheus


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    exp = Exporter()
    yield exp
    exp.close()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter) -> Iterator[Prometheus]:
    prom = Prometheus(exporter.port)
    yield prom
    prom.close()
