"""What a user does, on the local cluster, with the real helm and kubectl: `helm install`
the chart, `kubectl apply` the examples and `kubectl get tts`, install every values
scenario of the chart, and `kubectl apply --server-side -f manifests/install.yaml` on a
cluster of its own.

There is no container runtime here: the chart's operator Deployment is scheduled and its
pod is Running and Ready because kwok says so; the operator image itself never runs.
The operator under test runs as a local process with the chart's ServiceAccount token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import DEPLOYMENTS, HTTPROUTES, TTSSERVICES
from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.nodes import CPU_ON_DEMAND
from elastic_tts_dev.prometheus import Exporter, Prometheus
from tests.cluster.fixtures import CHART, RELEASE, ROOT, Installation, OperatorFactory
from tests.operator.cluster import wait_for

EXAMPLES = ROOT / "manifests" / "examples"
CAPTURE = ROOT / "out" / "kubectl-get-tts.txt"
# No Prometheus Operator CRDs here; tests/chart checks these objects (and tests/monitoring
# the PrometheusRule's rules, with promtool).
NOT_SERVED_HERE = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def test_helm_install_leaves_a_deployed_release_with_a_running_operator_pod(
        installed: Installation) -> None:
    cluster = installed.cluster
    status = json.loads(cluster.helm("status", RELEASE, "-n", RELEASE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    for crd in ("ttsservices.elastictts.io", "kopfpeerings.kopf.dev",
                "clusterkopfpeerings.kopf.dev"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=30s")
    pod = json.loads(cluster.kubectl("-n", RELEASE, "get", "pods", "-l",
                                     f"app.kubernetes.io/instance={RELEASE}", "-o",
                                     "json").stdout)["items"][0]
    assert pod["spec"]["serviceAccountName"] == RELEASE
    assert pod["status"]["phase"] == "Running"  # kwok's word: no container ran
    node = cluster.kubectl("get", "node", pod["spec"]["nodeName"], "-o",
                           "jsonpath={.metadata.labels.elastictts\\.io/pool}").stdout
    assert node == CPU_ON_DEMAND.name  # the only untainted pool
    can = cluster.kubectl("auth", "can-i", "patch", "deployments.apps/scale", "-A",
                          f"--as=system:serviceaccount:{RELEASE}:{RELEASE}", check=False)
    assert can.stdout.strip() == "yes"
    cannot = cluster.kubectl("auth", "can-i", "delete", "pods", "-A",
                             f"--as=system:serviceaccount:{RELEASE}:{RELEASE}", check=False)
    assert cannot.stdout.strip() == "no"


@pytest.mark.parametrize("values", sorted((CHART / "ci").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_values_scenario_renders_objects_the_api_server_accepts(
        installed: Installation, values: Path) -> None:
    """`helm template` of each ci/ scenario, sent to the API server as a server-side dry
    run: the real schemas of every kind (kopf's peerings included) decide."""
    cluster = installed.cluster
    release = f"ci-{values.stem.removesuffix('-values')}"
    settings = yaml.safe_load(values.read_text()) or {}
    for ns in (settings.get("watch") or {}).get("namespaces") or []:
        if cluster.kubectl("get", "namespace", ns, check=False).returncode != 0:
            cluster.create_namespace(ns)
    rendered = cluster.helm("template", release, str(CHART), "-n", RELEASE, "-f",
                            str(values)).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] not in NOT_SERVED_HERE]
    assert docs
    cluster.kubectl("apply", "--dry-run=server", "-f", "-",
                    input=yaml.safe_dump_all(docs))


def apply(cluster: LocalCluster, namespace: str, path: Path) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", str(path))


def test_kubectl_apply_the_examples_and_get_tts(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        installed: Installation, prometheus: Prometheus, exporter: Exporter) -> None:
    cluster = installed.cluster
    start_operator(namespace)
    for path in sorted(EXAMPLES.glob("*.yaml")):
        apply(cluster, namespace, path)
    # The examples name in-cluster Prometheus services; point the small one at ours.
    exporter.set_load("tts-minimal", "cpu", 12.5, namespace=namespace)
    cluster.kubectl("patch", "-n", namespace, "tts", "tts-minimal", "--type=merge", "-p",
                    json.dumps({"spec": {"scaling": {"prometheus": {"url": prometheus.url}}}}))
    names = [yaml.safe_load(p.read_text())["metadata"]["name"] for p in EXAMPLES.glob("*.yaml")]
    for name in names:
        wait_for(f"{name}'s children", lambda n=name: admin.list(
            DEPLOYMENTS, namespace, {"elastictts.io/service": n}))
    wait_for("tts-full's HTTPRoute", lambda: admin.get(HTTPROUTES, namespace, "tts-full"))

    def minimal() -> dict[str, str] | None:
        obj = admin.get(TTSSERVICES, namespace, "tts-minimal") or {}
        status = obj.get("status") or {}
        ready = [c for c in status.get("conditions") or [] if c["type"] == "Ready"]
        load = (status.get("load") or {}).get("charactersPerSecond") or 0
        return status if ready and ready[0]["status"] == "True" and load > 10 else None

    wait_for("tts-minimal Ready, with its load", minimal, timeout=60)
    table = cluster.kubectl("get", "tts", "-n", namespace).stdout
    CAPTURE.parent.mkdir(exist_ok=True)
    CAPTURE.write_text(table)
    header, *rows = table.splitlines()
    assert header.split() == ["NAME", "MODE", "GPU", "SPOT", "CPU", "LOAD", "COST/H", "READY",
                              "AGE"]
    row = next(r.split() for r in rows if r.startswith("tts-minimal "))
    assert row[1:5] == ["off-peak", "0", "0", "1"]
    assert float(row[5]) == pytest.approx(12.5, rel=0.2)
    assert row[6:8] == ["0.0877", "True"]
    assert {r.split()[0] for r in rows} == set(names)


@pytest.fixture(scope="module")
def bare_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster of its own: install.yaml creates the same names as the helm release."""
    with LocalCluster(pools=[CPU_ON_DEMAND], gateway_api=False,
                      workdir=tmp_path_factory.mktemp("bare")) as cluster:
        yield cluster


def test_server_side_apply_of_install_yaml(bare_cluster: LocalCluster) -> None:
    install = str(ROOT / "manifests" / "install.yaml")
    first = bare_cluster.kubectl("apply", "--server-side", "-f", install)
    assert "customresourcedefinition.apiextensions.k8s.io/ttsservices.elastictts.io " \
           "serverside-applied" in first.stdout
    bare_cluster.kubectl("wait", "--for=condition=Established", "--timeout=30s",
                         "crd/ttsservices.elastictts.io")
    bare_cluster.kubectl("-n", "elastic-tts", "rollout", "status", "deployment/elastic-tts",
                         "--timeout=60s")
    again = bare_cluster.kubectl("apply", "--server-side", "-f", install)
    assert "conflict" not in (again.stdout + again.stderr).lower()
    assert bare_cluster.kubectl("auth", "can-i", "patch", "ttsservices.elastictts.io/status",
                                "-A", "--as=system:serviceaccount:elastic-tts:elastic-tts",
                                check=False).stdout.strip() == "yes"
