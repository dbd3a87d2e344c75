"""`elastic-tts status` against the local cluster, reading a TTSService whose status the
real operator (`elastic-tts run` under the chart's ServiceAccount) wrote: what it prints is
what the API server holds, through the kubeconfig as kubectl reads it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import TTSSERVICES
from elastic_tts_dev.cluster import LocalCluster
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import tts
from tests.cluster.fixtures import OperatorFactory
from tests.operator.cluster import wait_for
from tests.operator.test_operator_lifecycle import condition, events, status_of

STATUS_TIMEOUT = 60  # seconds one `elastic-tts status` may take; it answers in about one


def status(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "elastic_tts.cli", "status", *argv],
                          capture_output=True, text=True, timeout=STATUS_TIMEOUT, check=False,
                          env={**os.environ, **(env or {})})


@pytest.fixture()
def scaled(start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
           prometheus: Prometheus, exporter: Exporter) -> dict[str, Any]:
    """A TTSService the operator has scaled up under load, with Events: its live object,
    frozen (the operator stopped), so what the CLI reads can be compared exactly."""
    operator = start_operator(namespace)
    exporter.set_load("shown", "cpu", 300, namespace=namespace)
    admin.create(TTSSERVICES, namespace, tts("shown", prometheus.url))
    wait_for("a ScaledUp event", lambda: events(admin, namespace, "shown", "ScaledUp"))
    wait_for("Ready", lambda: (condition(admin, namespace, "shown", "Ready") or {})
             .get("status") == "True", timeout=40)
    wait_for("the load in status", lambda: (status_of(admin, namespace, "shown").get("load")
                                            or {}).get("charactersPerSecond"))
    operator.stop()  # every tick rewrites lastDecision.time; the comparisons need one
    obj = admin.get(TTSSERVICES, namespace, "shown")
    assert obj is not None
    return obj


def test_one_service_shows_the_decision_pools_conditions_and_events(
        scaled: dict[str, Any], local_cluster: LocalCluster, namespace: str,
        admin: PykubeCluster) -> None:
    live = scaled["status"]
    result = status("--kubeconfig", str(local_cluster.kubeconfig), "-n", namespace, "shown")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # What explain prints, from what the operator wrote:
    assert f"mode      {live['mode']}" in out
    for pool, count in live["lastDecision"]["replicas"].items():
        assert f"  {pool:<14} {count}" in out
    assert f"cost/h    ${live['costPerHour']:.4f}" in out
    assert f"reason    {live['lastDecision']['reason']}" in out
    assert f"load      {live['load']['charactersPerSecond']:g} chars/s" in out
    # ...then each pool, every condition and the recent decisions:
    for pool, entry in live["pools"].items():
        assert any(line.split()[:3] == [pool, str(entry["desired"]), str(entry["current"])]
                   for line in out.splitlines()), out
    for cond in live["conditions"]:
        assert any(line.split()[:3] == [cond["type"], cond["status"], cond["reason"]]
                   for line in out.splitlines()), (cond, out)
    scaled_up = events(admin, namespace, "shown", "ScaledUp")
    assert scaled_up[0]["message"] in out
    assert result.stderr == ""


def test_json_and_yaml_carry_the_live_status(
        scaled: dict[str, Any], local_cluster: LocalCluster, namespace: str) -> None:
    live = scaled["status"]
    common = ("--kubeconfig", str(local_cluster.kubeconfig), "-n", namespace, "shown")
    as_json = json.loads(status(*common, "-o", "json").stdout)
    as_yaml = yaml.safe_load(status(*common, "-o", "yaml").stdout)
    for summary in (as_json, as_yaml):
        assert summary["mode"] == live["mode"]
        assert summary["replicas"] == live["lastDecision"]["replicas"]
        assert summary["cost_per_hour"] == live["costPerHour"]
        assert summary["reason"] == live["lastDecision"]["reason"]
        assert summary["conditions"] == live["conditions"]
        assert summary["pools"] == live["pools"]
        assert any(e["reason"] == "ScaledUp" for e in summary["events"])
    assert set(as_json) >= {"replicas", "mode", "cost_per_hour", "reason"}  # explain's keys


def test_listing_by_namespace_and_across_namespaces(
        scaled: dict[str, Any], local_cluster: LocalCluster, namespace: str) -> None:
    kubeconfig = ("--kubeconfig", str(local_cluster.kubeconfig))
    listed = status(*kubeconfig, "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "MODE", "REPLICAS", "COST/H", "READY", "DECIDED"]
    assert row.split()[:2] == ["shown", scaled["status"]["mode"]]
    everywhere = status(*kubeconfig, "-A", "-o", "wide")
    assert everywhere.returncode == 0, everywhere.stderr
    mine = [line for line in everywhere.stdout.splitlines() if line.startswith(namespace)]
    assert len(mine) == 1 and scaled["status"]["lastDecision"]["reason"] in mine[0]
    empty = status(*kubeconfig, "-n", "default")
    assert empty.stdout.strip() == "No TTSServices found in namespace 'default'."


def test_kubeconfig_as_kubectl_finds_it(scaled: dict[str, Any], local_cluster: LocalCluster,
                                        namespace: str, tmp_path: Path) -> None:
    """$KUBECONFIG is a list (missing files skipped, merged); the context picks the
    namespace; --context picks among contexts."""
    admin = yaml.safe_load(local_cluster.kubeconfig.read_text())
    context = admin["contexts"][0]
    context["context"]["namespace"] = namespace
    (tmp_path / "ns.yaml").write_text(yaml.safe_dump(admin))
    paths = os.pathsep.join([str(tmp_path / "missing.yaml"), str(tmp_path / "ns.yaml")])
    found = status("shown", "-o", "json", env={"KUBECONFIG": paths})
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["namespace"] == namespace
    by_name = status("--kubeconfig", str(tmp_path / "ns.yaml"), "--context", context["name"],
                     "shown", "-o", "json")
    assert by_name.returncode == 0, by_name.stderr
    wrong = status("--kubeconfig", str(tmp_path / "ns.yaml"), "--context", "prod")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (f"elastic-tts: --context prod: no such context (the "
                                    f"kubeconfig has {context['name']})")


def test_what_cannot_be_shown_is_one_line_and_exit_1(
        scaled: dict[str, Any], local_cluster: LocalCluster, namespace: str,
        tmp_path: Path) -> None:
    kubeconfig = ("--kubeconfig", str(local_cluster.kubeconfig))
    missing = status(*kubeconfig, "-n", namespace, "nope")
    assert (missing.returncode, missing.stderr) == (
        1, f'elastic-tts: TTSService "nope" not found in namespace "{namespace}"\n')
    # A server that is not there: a closed loopback port answers at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    admin = yaml.safe_load(local_cluster.kubeconfig.read_text())
    admin["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    (tmp_path / "gone.yaml").write_text(yaml.safe_dump(admin))
    gone = status("--kubeconfig", str(tmp_path / "gone.yaml"))
    assert gone.returncode == 1
    assert gone.stderr.startswith("elastic-tts: cannot reach the API server: ")
    assert len(gone.stderr.splitlines()) == 1
    # An identity that may not list TTSServices: the API server's 403, in one line.
    local_cluster.kubectl("-n", namespace, "create", "serviceaccount", "nobody")
    nobody = local_cluster.token_kubeconfig(namespace, "nobody", tmp_path / "nobody.yaml")
    refused = status("--kubeconfig", str(nobody), "-A")
    assert refused.returncode == 1
    assert refused.stderr.startswith("elastic-tts: the API server refused to show "
                                     "TTSServices in every namespace: HTTP 403")
    assert len(refused.stderr.splitlines()) == 1
