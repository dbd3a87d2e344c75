"""Fixtures of the e2e tier, and the report printed at the end of the run.

Shared by the session: the KMock API server (behind the fault gate) and one real
Prometheus that finds workers through file-based discovery. Per scenario (`make_loop`):
a namespace, its pod runner, its operator process and its tick recorder; everything is
stopped in teardown, and on failure the operator's log is attached to the report.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykube
import pytest

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts_dev.prometheus import Prometheus
from tests.e2e.apifaults import FaultyEmulatorThread
from tests.e2e.loop import Loop
from tests.e2e.report import REPORT

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyEmulatorThread]:
    emulator = FaultyEmulatorThread().start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def kubeconfig(e2e_api: FaultyEmulatorThread, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("e2e-kube") / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: emulator\n"
        f"clusters: [{{name: emulator, cluster: {{server: '{e2e_api.url}'}}}}]\n"
        "contexts: [{name: emulator, context: {cluster: emulator, user: tester}}]\n"
        "users: [{name: tester, user: {token: test-token}}]\n"
    )
    return path


@pytest.fixture(scope="session")
def e2e_cluster(kubeconfig: Path) -> PykubeCluster:
    return PykubeCluster(pykube.HTTPClient(pykube.KubeConfig.from_file(str(kubeconfig)),
                                           timeout=10))


@pytest.fixture(scope="session")
def sd_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-sd")


@pytest.fixture(scope="session")
def e2e_prometheus(sd_dir: Path) -> Iterator[Prometheus]:
    prom = Prometheus(scrape_configs=(
        "  - job_name: tts-workers\n"
        f"    file_sd_configs: [{{files: ['{sd_dir}/*.json'], refresh_interval: 1s}}]\n"))
    yield prom
    prom.close()


LoopFactory = Callable[[dict[str, Any]], Loop]


@pytest.fixture
def make_loop(e2e_cluster: PykubeCluster, e2e_api: FaultyEmulatorThread, kubeconfig: Path,
              sd_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
              ) -> Iterator[LoopFactory]:
    loops: list[Loop] = []

    def make(service: dict[str, Any]) -> Loop:
        namespace = f"e2e-{uuid.uuid4().hex[:6]}"
        loop = Loop(e2e_cluster, e2e_api.url, kubeconfig, namespace, service, sd_dir,
                    tmp_path)
        loops.append(loop)
        return loop.start()

    yield make
    for loop in loops:
        loop.stop()
    e2e_api.gate.clear()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for loop in loops:
            keep = Path("out") / "e2e-logs" / loop.namespace
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(loop.operator.log_path, keep / "operator.log")
            (keep / "runner-errors.txt").write_text("\n".join(loop.runner.errors))


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
