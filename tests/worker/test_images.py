"""The worker images: Dockerfiles linted (no Docker engine here to build them), and the
entrypoint run for real with a stand-in for the server it starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parents[2] / "worker"
DOCKERFILES = [WORKER / "Dockerfile.cpu", WORKER / "Dockerfile.gpu"]
ENTRYPOINT = WORKER / "entrypoint.sh"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        pytest.fail(f"{name} missing: it comes with the dev extra (`make venv`)")
    return path


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    done = subprocess.run([tool("hadolint"), "--no-color", str(dockerfile)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_keeps_the_sambert_constraints(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert "python:3.10" in text  # SambertHifigan refuses 3.11+
    assert '"scipy<1.13"' in text
    assert '"ttsfrd==0.2.1"' in text and '"kantts>=1.0.0"' in text  # not PyPI's 0.1.0
    assert "releases/repo.html" in text
    assert "snapshot_download" in text and "TTS_MODEL_DIR=/opt/models/sambert" in text
    assert "USER 10001" in text
    assert 'ENTRYPOINT ["/usr/local/bin/tts-entrypoint"]' in text


def test_entrypoint_passes_shellcheck() -> None:
    done = subprocess.run([tool("shellcheck"), str(ENTRYPOINT)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_entrypoint_wipes_the_metrics_dir_and_execs_the_server(tmp_path: Path) -> None:
    prom = tmp_path / "prom"
    (prom / "old").mkdir(parents=True)
    (prom / "counter_123.db").write_bytes(b"stale")
    (prom / "old" / "gauge_livesum_9.db").write_bytes(b"stale")
    stub_dir = tmp_path / "bin"
    stub_dir.mkdir()
    stub = stub_dir / "elastic-tts-worker"
    stub.write_text('#!/bin/sh\necho "pid=$$ args=$* dir=$PROMETHEUS_MULTIPROC_DIR"\n'
                    'ls -A "$PROMETHEUS_MULTIPROC_DIR"\n')
    stub.chmod(0o755)
    env = {"PATH": f"{stub_dir}{os.pathsep}/usr/bin:/bin", "PROMETHEUS_MULTIPROC_DIR": str(prom)}
    process = subprocess.Popen([str(ENTRYPOINT), "--port", "9000"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    # The same PID: the server replaced the shell (exec), so it gets SIGTERM as PID 1 would.
    assert out.splitlines() == [f"pid={process.pid} args=serve --port 9000 dir={prom}"]
    assert prom.is_dir() and list(prom.iterdir()) == []


def test_entrypoint_refuses_to_wipe_root() -> None:
    done = subprocess.run([str(ENTRYPOINT)], env={"PATH": "/usr/bin:/bin",
                                                   "PROMETHEUS_MULTIPROC_DIR": "/"},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "refusing" in done.stderr
