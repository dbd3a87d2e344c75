"""Fixtures of the e2e tier, and the report printed at the end of the run.

Shared by the session: the local cluster with the chart installed by helm
(tests/cluster/fixtures.py), the fault proxy in front of its API server, the operator's
kubeconfig (a TokenRequest token for the chart's ServiceAccount, through the proxy), and
one real Prometheus that scrapes the workers with the job users are given in
`manifests/prometheus/scrape-config.yaml`: pod discovery against the API server (served
over HTTP SD, tests/e2e/podsd.py, as Debian's build lacks the Kubernetes one) and that
file's relabelling. Per scenario (`make_loop`): a namespace, node pools and their kubelet, the
operator process, the observers; everything is stopped in teardown, any request of the
operator the API server refused with 403 fails the test, and on failure the operator's
log, the kubelet's errors and the workers' logs are kept under out/e2e-logs/.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pykube
import pytest
import yaml

from elastic_tts_dev.cluster import LocalCluster, kubeconfig_text
from elastic_tts_dev.prometheus import Prometheus
from tests.cluster.fixtures import Installation, forbidden_since
from tests.e2e.apifaults import FaultProxy
from tests.e2e.kubelet import POD_NETWORK
from tests.e2e.loop import Loop
from tests.e2e.podsd import PodDiscovery
from tests.e2e.report import REPORT
from tests.e2e.specs import SPEED, node_pools

ROOT = Path(__file__).resolve().parents[2]
SCRAPE_CONFIG = ROOT / "manifests" / "prometheus" / "scrape-config.yaml"

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


# The tier's proxy and Prometheus are package-scoped: they stop when tests/e2e is done
# instead of running (and printing) through every later tier of the session.
@pytest.fixture(scope="package")
def e2e_proxy(local_cluster: LocalCluster) -> Iterator[FaultProxy]:
    proxy = FaultProxy(local_cluster.server, local_cluster.ca).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="package")
def operator_kubeconfig(installed: Installation, e2e_proxy: FaultProxy,
                        tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart's ServiceAccount, through the fault proxy."""
    cluster = installed.cluster
    path = tmp_path_factory.mktemp("e2e-operator") / "kubeconfig"
    path.write_text(kubeconfig_text(e2e_proxy.url, cluster.ca, installed.user,
                                    token=cluster.token(installed.namespace,
                                                        installed.service_account)))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def admin_http(local_cluster: LocalCluster) -> pykube.HTTPClient:
    return pykube.HTTPClient(pykube.KubeConfig.from_file(str(local_cluster.kubeconfig)),
                             timeout=15.0)


def worker_scrape_job(discovery_url: str) -> list[dict[str, Any]]:
    """The users' scrape job, as shipped, with what only this machine needs: a 1 s
    scrape (the tier's rate windows are seconds), the pod discovery over HTTP SD (the
    same role=pod targets and meta labels), only pods of the process nodes (kwok's pods
    serve nothing), and their loopback twins as the address (tests/e2e/kubelet.py)."""
    jobs = yaml.safe_load(SCRAPE_CONFIG.read_text())
    job = dict(jobs[0])
    job["scrape_interval"] = "1s"
    assert [c.get("role") for c in job.pop("kubernetes_sd_configs")] == ["pod"]
    job["http_sd_configs"] = [{"url": discovery_url, "refresh_interval": "1s"}]
    network = POD_NETWORK.replace(".", r"\.")
    job["relabel_configs"] = [*job["relabel_configs"],
                              {"source_labels": ["__address__"], "action": "keep",
                               "regex": rf"{network}\..*"},
                              {"source_labels": ["__address__"], "target_label": "__address__",
                               "regex": r"10\.(\d+)\.(\d+)\.(\d+):(\d+)",
                               "replacement": "127.$1.$2.$3:$4"}]
    return [job]


@pytest.fixture(scope="package")
def e2e_prometheus(admin_http: pykube.HTTPClient) -> Iterator[Prometheus]:
    discovery = PodDiscovery(admin_http).start()
    jobs = yaml.safe_dump(worker_scrape_job(discovery.url), sort_keys=False)
    prom = Prometheus(scrape_configs="".join(f"  {line}\n" for line in jobs.splitlines()))
    yield prom
    prom.close()
    discovery.stop()


LoopFactory = Callable[..., Loop]


@pytest.fixture
def make_loop(local_cluster: LocalCluster, installed: Installation, admin_http: pykube.HTTPClient,
              operator_kubeconfig: Path, e2e_proxy: FaultProxy, tmp_path: Path,
              request: pytest.FixtureRequest) -> Iterator[LoopFactory]:
    """`make_loop(service_factory, nodes={"cpu": 1, ...})`: `service_factory(nodes)`
    builds the TTSService for the node pools it is given."""
    loops: list[Loop] = []
    since = datetime.now().astimezone()

    def make(service: Callable[[dict[str, Any]], dict[str, Any]],
             nodes: dict[str, int] | None = None) -> Loop:
        suffix = uuid.uuid4().hex[:6]
        namespace = local_cluster.create_namespace(f"e2e-{suffix}")
        pools = node_pools(f"e2e-{suffix}")
        loop = Loop(local_cluster, admin_http, operator_kubeconfig, namespace,
                    service(pools), pools, dict.fromkeys(pools, SPEED),
                    tmp_path / namespace, nodes if nodes is not None else
                    {"cpu": 1, "spot": 1, "gpu": 1})
        loops.append(loop)
        return loop.start()

    yield make
    e2e_proxy.gate.clear()
    failed = getattr(request.node, "rep_call", None)
    for loop in loops:
        loop.stop()
        if failed is not None and failed.failed:
            keep = ROOT / "out" / "e2e-logs" / loop.namespace
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(loop.operator.log_path, keep / "operator.log")
            (keep / "kubelet-errors.txt").write_text("\n".join(loop.kubelet.record.errors))
            for log in (tmp_path / loop.namespace).glob("*/worker.log"):
                shutil.copy(log, keep / f"{log.parent.name}.log")
        local_cluster.delete_namespace(loop.namespace)
    refused = forbidden_since(installed, since)
    if refused:
        pytest.fail("the API server refused the operator (chart RBAC):\n" + "\n".join(refused))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not (REPORT.scenarios or REPORT.faults or REPORT.bad_input):
        return
    path = REPORT.write()
    terminalreporter.write_sep("=", "e2e report")
    terminalreporter.write_line(REPORT.render())
    terminalreporter.write_line(f"(written to {path})")
