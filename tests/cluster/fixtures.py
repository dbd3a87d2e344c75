"""The real-cluster tier's fixtures: one local cluster per test session (upstream etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and kwok, `elastic_tts_dev.cluster`),
the chart installed into it by the real helm as the README says, the operator's own
identity (a TokenRequest token for the chart's ServiceAccount), a namespace per test,
and a real Prometheus scraping a test-driven exporter (per module).

Missing binaries fail the tests with the command that builds them; nothing is skipped.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pykube
import pytest

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts_dev.binaries import Binaries, BuildError, find
from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.operator import OperatorProcess
from elastic_tts_dev.prometheus import Exporter, Prometheus

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "elastic-tts"
RELEASE = "elastic-tts"  # helm release, its namespace, and the chart's ServiceAccount
OPERATOR_USER = f"system:serviceaccount:{RELEASE}:{RELEASE}"


@dataclass(frozen=True)
class Installation:
    """The chart as `helm install` left it, and a kubeconfig for its ServiceAccount."""

    cluster: LocalCluster
    namespace: str
    service_account: str
    kubeconfig: Path

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def built_binaries() -> Binaries:
    """The cluster binaries, or the test fails naming the command that builds them."""
    try:
        return find()
    except BuildError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(workdir=tmp_path_factory.mktemp("cluster"),
                      binaries=built_binaries()) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def installed(local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
              ) -> Installation:
    """`helm install` of the chart with its default values, as the README's Install
    section runs it. The chart's operator Deployment stays: there is no container
    runtime here, so kwok runs its pod as a fake (Ready, running nothing), while the
    operator under test runs as a local process with the same ServiceAccount."""
    local_cluster.helm("install", RELEASE, str(CHART), "--namespace", RELEASE,
                       "--create-namespace", "--wait", "--timeout", "120s")
    local_cluster.kubectl("-n", RELEASE, "rollout", "status", f"deployment/{RELEASE}",
                          "--timeout=60s")
    kubeconfig = local_cluster.token_kubeconfig(
        RELEASE, RELEASE, tmp_path_factory.mktemp("operator") / "kubeconfig")
    return Installation(local_cluster, RELEASE, RELEASE, kubeconfig)


def _namespace_name(request: pytest.FixtureRequest) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return f"{stem[:40].strip('-')}-{secrets.token_hex(3)}"


@pytest.fixture()
def namespace(local_cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own, deleted (in the background) afterwards."""
    name = local_cluster.create_namespace(_namespace_name(request))
    yield name
    local_cluster.delete_namespace(name)


@pytest.fixture(scope="session")
def admin(local_cluster: LocalCluster) -> PykubeCluster:
    """The tests' own client (admin), through the operator's adapter for raw JSON."""
    config = pykube.KubeConfig.from_file(str(local_cluster.kubeconfig))
    return PykubeCluster(pykube.HTTPClient(config, timeout=15.0))


def forbidden_since(installation: Installation, since: datetime) -> list[str]:
    """The operator identity's requests the API server refused with 403 since `since`."""
    refused = []
    for event in installation.cluster.audit_events(user=installation.user):
        at = datetime.fromisoformat(event["requestReceivedTimestamp"])
        if at >= since and event.get("responseStatus", {}).get("code") == 403:
            refused.append(f"{event['verb']} {event['requestURI']}: "
                           f"{event['responseStatus'].get('message', '')}")
    return refused


OperatorFactory = Callable[..., OperatorProcess]


@pytest.fixture()
def start_operator(installed: Installation, namespace: str, tmp_path: Path
                   ) -> Iterator[OperatorFactory]:
    """Starts `elastic-tts run` processes under the chart's ServiceAccount token.
    Afterwards each is stopped (before the test's namespace goes), and any request of
    that identity the API server refused with 403 during the test fails it: the chart's
    RBAC must allow all the operator does."""
    started: list[OperatorProcess] = []
    since = datetime.now().astimezone()

    def start(*namespaces: str, **options: Any) -> OperatorProcess:
        log = tmp_path / f"operator-{len(started)}.log"
        extra = ["--rate-windows=4s,8s", "--burst-window=2s", *options.pop("extra_args", ())]
        process = OperatorProcess(installed.kubeconfig, log, namespaces=namespaces,
                                  extra_args=extra, **options)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
    refused = forbidden_since(installed, since)
    if refused:
        pytest.fail("the API server refused the operator (chart RBAC):\n" + "\n".join(refused))


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    """Shared by the module's tests, each in its own namespace: set_load names it."""
    exp = Exporter()
    yield exp
    exp.close()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter) -> Iterator[Prometheus]:
    prom = Prometheus(exporter.port)
    yield prom
    prom.close()
