"""The README's Install section, run as a newcomer runs it, command by command.

The commands are read from README.md (the block after ``<!-- walkthrough: install -->``,
`tests/readme.py`) and run in order with the built `kubectl` and `helm` first on PATH and
KUBECONFIG set, as the README's quick start sets them, against a local cluster (upstream
control plane, `elastic_tts_dev.cluster`) standing in for the user's:

- ``make images``: not run. It needs a Docker engine, which this machine has not. What
  is checked instead is what the rest of the walk-through relies on: the images it builds
  (`make -n images`, the tags as make expands them) include the example's worker image
  and the operator image the installed chart asks for.
- ``helm install ...``: run as written (the release and namespace are read from it).
- ``kubectl apply -f <example>``: run as written; the TTSService's name comes from the file.
- ``kubectl wait --for=condition=Ready tts/<name> ...``: run as written.
- ``kubectl get tts``: run as written; its columns must be the README's table's.
- ``kubectl port-forward svc/<name> L:R &``: not run. Port-forwarding goes through the
  kubelet's streaming server, which the stand-in kubelet here does not have. Instead the
  Service is resolved as kube-proxy resolves it: the ready endpoints of the EndpointSlices
  the real controller-manager wrote from the pods' readiness, at the Service's target port.
- ``curl ... localhost:L/...``: run as written, with ``localhost:L`` replaced by that
  endpoint; the answer must be a WAV of real speech (espeak-ng).

Any other command, or these in another order, fails the test: teach it the new step.

The cluster: a small system node group (kwok: its pods are Running because kwok says so),
where the chart's operator pod lands, and a CPU node group whose kubelet is the e2e tier's
`ProcessKubelet`, which starts a real worker process for each pod bound there and writes
its readiness back. The example is applied unchanged: it selects no node, and its workers'
requests (2 CPUs, 4 GiB) fit only the CPU nodes. The CPU nodes join once the operator pod
is bound, as a node group scaling up would, because the stand-in kubelet runs worker
images only. There is no container runtime, so the operator image never runs: the
operator is `elastic-tts run --all-namespaces` as a local process, authenticated with a
token of the chart's ServiceAccount, so the chart's RBAC is what it gets (a refused
request fails the test). No Prometheus is installed, as on a newcomer's cluster: the
example's default URL does not answer, the operator holds its replicas (MetricsAvailable
False) and the service is Ready when they are.
"""

from __future__ import annotations

import array
import io
import json
import re
import shlex
import subprocess
import wave
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pykube
import pytest
import yaml

from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.nodes import M5_4XLARGE, InstanceType, NodePool
from elastic_tts_dev.operator import OperatorProcess
from tests import readme
from tests.cluster.fixtures import ROOT, Installation, built_binaries, forbidden_since
from tests.e2e.kubelet import ProcessKubelet, reach

# Two vCPUs and 2 GiB: the operator fits (100m, 128Mi), a worker (2 CPUs, 4 GiB) never.
T3_SMALL = InstanceType("t3.small", "t3", 2, 2)
SYSTEM = NodePool("system", T3_SMALL, count=1)
CPU = NodePool("cpu", M5_4XLARGE, count=0, runtime="process")  # elastictts.io/pool=cpu


def option(argv: tuple[str, ...], *names: str) -> str | None:
    """The value of a flag given as ``--flag value`` or ``--flag=value``."""
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                return argv[index + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


@pytest.fixture(scope="module")
def newcomer_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster of its own: the README's release name is the session cluster's too."""
    with LocalCluster(pools=[SYSTEM], gateway_api=False, binaries=built_binaries(),
                      workdir=tmp_path_factory.mktemp("newcomer")) as cluster:
        yield cluster


def run(cluster: LocalCluster, command: readme.Command, cwd: Path,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A README command through bash, as typed into a terminal."""
    done = subprocess.run(["bash", "-c", command.text], cwd=cwd, env=cluster.env(),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{command}\n  exited with {done.returncode}:\n{done.stderr or done.stdout}")
    return done


def image_tags() -> set[str]:
    """The tags `make images` builds, as make expands them (a dry run: no Docker here)."""
    dry = subprocess.run(["make", "-s", "-n", "images"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    tags = set()
    for line in dry.splitlines():
        if " build " not in line:  # the Docker check before them is shell, not a command
            continue
        argv = shlex.split(line)
        if "-t" in argv:
            tags.add(argv[argv.index("-t") + 1])
    return tags


def rows(table: str) -> list[dict[str, str]]:
    """kubectl's table as column -> cell, cut at the header's column starts (a cell
    may be empty, as LOAD is without metrics)."""
    header, *lines = table.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [{n: line[a:b].strip() for n, (a, b) in zip(names, bounds, strict=True)}
            for line in lines if line.strip()]


def ready_endpoints(api: pykube.HTTPClient, namespace: str, service: str,
                    port_name: str) -> list[str]:
    """host:port of the Service's ready endpoints, from its EndpointSlices, as kube-proxy
    reads them (the pod IPs' loopback twins: tests/e2e/kubelet.py)."""
    answer = api.get(url="endpointslices", version="discovery.k8s.io/v1", namespace=namespace,
                     params={"labelSelector": f"kubernetes.io/service-name={service}"})
    answer.raise_for_status()
    found = []
    for piece in answer.json().get("items") or []:
        ports = {p.get("name"): p["port"] for p in piece.get("ports") or []}
        if port_name not in ports:
            continue
        for endpoint in piece.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready"):
                found += [f"{reach(a)}:{ports[port_name]}" for a in endpoint["addresses"]]
    return found


def test_the_readme_install_walkthrough(newcomer_cluster: LocalCluster, tmp_path: Path) -> None:
    cluster = newcomer_cluster
    walk = readme.Walk(readme.commands("install"), __file__)
    since = datetime.now().astimezone()

    walk.take("make", "images")
    tags = image_tags()

    helm = walk.take("helm", "install")
    release = helm.argv[2]
    namespace = option(helm.argv, "--namespace", "-n") or "default"
    run(cluster, helm, ROOT)
    cluster.kubectl("-n", namespace, "rollout", "status", f"deployment/{release}",
                    "--timeout=60s")
    operator_pod = json.loads(cluster.kubectl(
        "-n", namespace, "get", "pods", "-l", f"app.kubernetes.io/instance={release}", "-o",
        "json").stdout)["items"][0]
    assert operator_pod["spec"]["containers"][0]["image"] in tags, tags
    assert operator_pod["spec"]["nodeName"].startswith(SYSTEM.name)

    api = pykube.HTTPClient(pykube.KubeConfig.from_file(str(cluster.kubeconfig)), timeout=15)
    (tmp_path / "kubelet").mkdir()
    kubelet = ProcessKubelet(api, "default", tmp_path / "kubelet", {CPU.name: 26})
    account = operator_pod["spec"]["serviceAccountName"]
    installation = Installation(cluster, namespace, account, cluster.token_kubeconfig(
        namespace, account, tmp_path / "operator.kubeconfig"))
    # As the chart's pod runs it: every namespace, standalone (no peering).
    operator = OperatorProcess(installation.kubeconfig, tmp_path / "operator.log")
    kubelet.start()
    try:
        kubelet.register(CPU, 2)  # the CPU node group scales up
        operator.start()
        apply = walk.take("kubectl", "apply", "-f")
        example = yaml.safe_load((ROOT / apply.argv[3]).read_text())
        name = example["metadata"]["name"]
        service_namespace = example["metadata"].get("namespace", "default")
        assert service_namespace == "default", "the kubelet runs the default namespace's pods"
        assert example["spec"]["image"] in tags, tags
        run(cluster, apply, ROOT)

        waited = walk.take("kubectl", "wait")
        assert "--for=condition=Ready" in waited.argv and f"tts/{name}" in waited.argv, waited
        run(cluster, waited, ROOT, timeout=150)

        table = run(cluster, walk.take("kubectl", "get", "tts"), ROOT).stdout
        shown = readme.console("install")
        assert table.splitlines()[0].split() == shown[1].split(), (table, shown[1])
        row = next(r for r in rows(table) if r["NAME"] == name)
        assert row["READY"] == "True" and int(row["CPU"]) >= 1, table
        status = json.loads(cluster.kubectl("get", "tts", name, "-n", service_namespace,
                                            "-o", "json").stdout)["status"]
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions["MetricsAvailable"] == "False", status  # no Prometheus, as said

        forward = walk.take("kubectl", "port-forward")
        target, ports = forward.argv[2], forward.argv[3]
        assert target == f"svc/{name}" and forward.argv[-1] == "&", forward
        local, _, remote = ports.partition(":")
        service = json.loads(cluster.kubectl("get", "service", name, "-n", service_namespace,
                                             "-o", "json").stdout)
        port = next(p for p in service["spec"]["ports"] if str(p["port"]) == remote)
        endpoints = ready_endpoints(api, service_namespace, name, port["name"])
        assert endpoints, f"no ready endpoint behind Service {name}"

        curl = walk.take("curl")
        local_address = re.compile(rf"\blocalhost:{re.escape(local)}\b")
        argv = [local_address.sub(endpoints[0], arg) for arg in curl.argv]
        assert argv != list(curl.argv), f"{curl}: it does not speak to localhost:{local}"
        output = option(curl.argv, "-o", "--output")
        assert output, f"{curl}: no -o file"
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        walk.done()

        audio = (tmp_path / output).read_bytes()
        assert audio[:4] == b"RIFF", audio[:200]
        with wave.open(io.BytesIO(audio)) as speech:
            assert speech.getsampwidth() == 2, speech.getparams()
            seconds = speech.getnframes() / speech.getframerate()
            samples = array.array("h", speech.readframes(speech.getnframes()))
        assert seconds > 0.3, seconds  # six syllables of espeak-ng
        assert max(map(abs, samples)) > 1000, "silence"  # a voice, not an empty track
        assert not kubelet.record.errors, kubelet.record.errors
    finally:
        operator.stop()
        kubelet.stop()
        kubelet.delete_nodes()
    refused = forbidden_since(installation, since)
    assert not refused, refused

