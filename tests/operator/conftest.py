"""Fixtures of the operator tier: the KMock API server over HTTP, a real Prometheus
scraping a test-driven exporter, and a kubeconfig pointing the operator at the emulator."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pykube
import pytest

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts_dev.emulator import EmulatorThread
from elastic_tts_dev.prometheus import Exporter, Prometheus
from tests.operator.cluster import FakeKubelet

OPERATOR_TOKEN = "operator-token"
TESTER_TOKEN = "tester-token"


def write_kubeconfig(path: Path, server: str, token: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: emulator\n"
        f"clusters: [{{name: emulator, cluster: {{server: '{server}'}}}}]\n"
        "contexts: [{name: emulator, context: {cluster: emulator, user: user}}]\n"
        f"users: [{{name: user, user: {{token: {token}}}}}]\n"
    )
    return path


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorThread]:
    emulator = EmulatorThread().start()
    # Two identities, as in a cluster: the operator (through $KUBECONFIG, as it runs) and
    # the tests themselves, so the API server can tell whose calls RBAC must allow.
    folder = tmp_path_factory.mktemp("kube")
    kubeconfig = write_kubeconfig(folder / "operator", emulator.url, OPERATOR_TOKEN)
    emulator.tester_kubeconfig = write_kubeconfig(folder / "tester", emulator.url, TESTER_TOKEN)
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(kubeconfig)
    yield emulator
    if previous is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = previous
    emulator.stop()


@pytest.fixture(scope="module")
def cluster(api_server: EmulatorThread) -> PykubeCluster:
    """The tests' own client (the fake kubelet uses it too), under the tester identity."""
    config = pykube.KubeConfig.from_file(str(api_server.tester_kubeconfig))
    return PykubeCluster(pykube.HTTPClient(config, timeout=10.0))


@pytest.fixture(scope="module")
def namespace() -> str:
    return f"tts-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def kubelet(cluster: PykubeCluster, namespace: str) -> Iterator[FakeKubelet]:
    fake = FakeKubelet(cluster, namespace).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def exporter(namespace: str) -> Iterator[Exporter]:
    exp = Exporter(namespace)
    yield exp
    exp.close()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter) -> Iterator[Prometheus]:
    prom = Prometheus(exporter.port)
    yield prom
    prom.close()


def examples_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "manifests" / "examples"
