"""The local cluster itself: the command starts it and SIGTERM (or the death of the
command, even by SIGKILL) leaves no process behind; its nodes are labelled and tainted
as a cloud's node pools; the binaries' cache and the missing-Go failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from elastic_tts_dev import binaries
from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.nodes import CAPACITY_TYPE_LABEL, GPU_RESOURCE, POOL_LABEL


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if Path(f"/proc/{p}").exists()
            and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()}


@pytest.fixture()
def command(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "elastic_tts_dev.cluster", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert process.stdout is not None
    lines = []
    for _ in range(200):  # bounded: the banner is a handful of lines
        line = process.stdout.readline()
        lines.append(line)
        if not line or line.startswith("cluster up"):
            break
    assert lines[-1].startswith("cluster up"), "".join(lines)
    yield process, kubeconfig
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    process.stdout.close()


def kubectl(kubeconfig: Path, *args: str) -> str:
    return subprocess.run([str(binaries.find()["kubectl"]), f"--kubeconfig={kubeconfig}",
                           *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def test_the_command_serves_until_sigterm_and_leaves_nothing_behind(
        command: tuple[subprocess.Popen[str], Path]) -> None:
    process, kubeconfig = command
    nodes = json.loads(kubectl(kubeconfig, "get", "nodes", "-o", "json"))["items"]
    assert {n["metadata"]["labels"][POOL_LABEL] for n in nodes} == {"gpu", "gpu-spot", "cpu"}
    children = descendants(process.pid)
    assert len(children) >= 5  # etcd, apiserver, controller-manager, scheduler, kwok
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
    deadline = time.monotonic() + 10
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(children) == set()


def test_a_killed_command_takes_its_children_along(
        command: tuple[subprocess.Popen[str], Path]) -> None:
    process, _ = command
    children = descendants(process.pid)
    assert children
    process.kill()  # SIGKILL: no cleanup code runs; the parent-death signal does it
    process.wait(10)
    deadline = time.monotonic() + 15
    while alive(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(children) == set()


def test_nodes_are_labelled_and_tainted_as_a_cloud_labels_its_pools(
        local_cluster: LocalCluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in json.loads(local_cluster.kubectl(
        "get", "nodes", "-o", "json").stdout)["items"]}
    spot = nodes["gpu-spot-0"]
    labels = spot["metadata"]["labels"]
    assert labels[CAPACITY_TYPE_LABEL] == "spot"
    assert labels["karpenter.k8s.aws/instance-family"] == "g4dn"
    assert labels["node.kubernetes.io/instance-type"] == "g4dn.12xlarge"
    assert {"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"} in spot["spec"]["taints"]
    assert spot["status"]["allocatable"][GPU_RESOURCE] == "4"
    assert nodes["gpu-0"]["metadata"]["labels"][CAPACITY_TYPE_LABEL] == "on-demand"
    assert not nodes["cpu-0"]["spec"].get("taints")
    assert GPU_RESOURCE not in nodes["cpu-0"]["status"]["allocatable"]
    for node in nodes.values():  # kwok keeps every node Ready, with a lease
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", node["metadata"]["name"]


def test_a_missing_go_toolchain_fails_naming_the_install_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELASTIC_TTS_CACHE", str(tmp_path))  # nothing cached there
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(binaries, "GO_ELSEWHERE", ())
    with pytest.raises(binaries.BuildError) as missing:
        binaries.find()
    assert "make cluster-bin" in str(missing.value)
    with pytest.raises(binaries.BuildError) as no_go:
        binaries.build()
    assert "install Go 1.26" in str(no_go.value)
    assert "/usr/local/go" in str(no_go.value)


def test_the_cache_key_follows_every_pinned_file(tmp_path: Path) -> None:
    copy = tmp_path / "gobuild"
    subprocess.run(["cp", "-r", str(binaries.GOBUILD), str(copy)], check=True)
    before = binaries.cache_key(copy)
    assert before == binaries.cache_key(binaries.GOBUILD)
    go_sum = copy / "gatewayapi" / "go.sum"
    go_sum.write_text(go_sum.read_text() + "\n")
    assert binaries.cache_key(copy) != before


def test_the_tool_block_names_every_binary() -> None:
    packages = binaries.tool_packages((binaries.GOBUILD / "go.mod").read_text())
    names = {p.rstrip("/").split("/")[-2 if p.split("/")[-1].startswith("v") else -1]
             for p in packages}
    assert {binaries.RENAMES.get(n, n) for n in names} == set(binaries.NAMES)


def test_a_port_taken_before_a_component_binds_it_starts_again_on_fresh_ports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """free_port finds a port a moment before the component binds it; when another
    process takes it in between (here: this test, for kube-apiserver's port), the launcher
    starts the control plane again instead of failing the session."""
    import socket

    from elastic_tts_dev import cluster as cluster_module

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    real = cluster_module.free_port
    handed: list[int] = []

    def first_one_taken() -> int:
        port = taken.getsockname()[1] if not handed else real()
        handed.append(port)
        return port

    monkeypatch.setattr(cluster_module, "free_port", first_one_taken)
    local = LocalCluster(pools=(), workdir=tmp_path / "cluster", gateway_api=False,
                         audit=False)
    try:
        local.start()
        assert local.port != taken.getsockname()[1]
        # The first kube-apiserver lost the port; the log (appended to) says so.
        assert "address already in use" in (local.logs / "kube-apiserver.log").read_text()
        assert kubectl(local.kubeconfig, "get", "--raw", "/readyz").strip() == "ok"
    finally:
        local.stop()
        taken.close()
