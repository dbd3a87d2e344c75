"""The worker images: Dockerfiles linted (no Docker engine here to build them), and the
entrypoint run for real with a stand-in for the server it starts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from elastic_tts.policy import parse_spec
from elastic_tts_dev.examples import default_at

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "worker"
SAMBERT_DOCKERFILES = [WORKER / "Dockerfile.cpu", WORKER / "Dockerfile.gpu"]
ESPEAK_DOCKERFILE = WORKER / "Dockerfile.espeak"
DOCKERFILES = [*SAMBERT_DOCKERFILES, ESPEAK_DOCKERFILE]
# The published image of each Dockerfile, as the examples name them.
IMAGES = {"ghcr.io/elastic-tts/worker-cpu": WORKER / "Dockerfile.cpu",
          "ghcr.io/elastic-tts/worker-gpu": WORKER / "Dockerfile.gpu",
          "ghcr.io/elastic-tts/worker-espeak": ESPEAK_DOCKERFILE}
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))
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


@pytest.mark.parametrize("dockerfile", SAMBERT_DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_keeps_the_sambert_constraints(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert "python:3.10" in text  # SambertHifigan refuses 3.11+
    assert '"scipy<1.13"' in text
    assert '"ttsfrd==0.2.1"' in text and '"kantts>=1.0.0"' in text  # not PyPI's 0.1.0
    assert "releases/repo.html" in text
    # Baked at <root>/<id>, where TTS_MODEL (the spec's model) finds it offline.
    assert "snapshot_download" in text and "local_dir='/opt/models/' + sys.argv[1]" in text
    assert "TTS_MODEL_ROOT=/opt/models" in text and "TTS_MODEL=${MODEL_ID}" in text
    assert "TTS_MODEL_DIR" not in text.split("FROM ${PYTHON_IMAGE} AS runtime")[1]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_image_runs_unprivileged_with_both_listeners(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert "USER 10001" in text
    assert 'ENTRYPOINT ["/usr/local/bin/tts-entrypoint"]' in text
    assert "EXPOSE 8080 8081" in text and "TTS_PROBE_BIND=0.0.0.0:8081" in text
    assert '"gunicorn>=27.0,<28"' in text and '"h11>=0.14"' in text


def engines_of(dockerfile: Path) -> set[str]:
    found = re.findall(r'^LABEL io\.elastic-tts\.engines="([^"]+)"', dockerfile.read_text(),
                       re.M)
    assert len(found) == 1, f"{dockerfile.name} must say which engines it carries"
    return set(found[0].split(","))


def test_each_image_says_which_engines_it_carries() -> None:
    assert engines_of(WORKER / "Dockerfile.cpu") == {"modelscope"}
    assert engines_of(WORKER / "Dockerfile.gpu") == {"modelscope"}
    assert engines_of(ESPEAK_DOCKERFILE) == {"espeak"}
    espeak = ESPEAK_DOCKERFILE.read_text()
    installs = re.findall(r"(?:pip|apt-get) install[^\n]*(?:\\\n[^\n]*)*", espeak)
    assert any("espeak-ng" in line for line in installs)
    assert not any("torch" in line or "modelscope" in line for line in installs), installs


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_each_example_asks_only_for_an_engine_its_image_carries(example: Path) -> None:
    spec = parse_spec(yaml.safe_load(example.read_text())["spec"])
    repository = spec.image.rsplit(":", 1)[0]
    assert repository in IMAGES, f"{example.name}: {spec.image} is no image this repo builds"
    assert spec.engine in engines_of(IMAGES[repository]), (example.name, spec.engine)


def test_the_spec_default_image_carries_the_default_engine() -> None:
    """A TTSService that names neither gets an image this repo builds, with its engine."""
    image, engine = default_at(["spec", "image"]), default_at(["spec", "engine"])
    repository = image.rsplit(":", 1)[0]
    assert repository in IMAGES, f"the spec's default image {image} is no image this repo builds"
    assert engine in engines_of(IMAGES[repository])


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
