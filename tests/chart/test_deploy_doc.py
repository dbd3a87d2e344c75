"""docs/deploy.md says how to get the images and install the chart as the Makefile and the
chart really do it: the image names `make images` builds, the commands that load them into
kind and k3d, the packaged chart's file name, and values that exist."""

from __future__ import annotations

import re
import subprocess
from typing import Any

from tests.chart import chart_files as cf

PAGE = (cf.ROOT / "docs" / "deploy.md").read_text("utf-8")


def _built_images() -> list[str]:
    plan = subprocess.run(["make", "--no-print-directory", "-n", "images"], cwd=cf.ROOT,
                          capture_output=True, text=True, timeout=60).stdout
    return re.findall(r"^docker build -f \S+ -t (\S+) \.$", plan, re.M)


def test_the_images_table_names_what_make_images_builds() -> None:
    table = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", PAGE, re.M)
    assert [image for image, _ in table] == _built_images()
    for _, dockerfile in table:
        assert (cf.ROOT / dockerfile).exists(), dockerfile


def test_kind_and_k3d_load_the_images_a_cpu_install_needs() -> None:
    images = _built_images()
    wanted = [i for i in images if "/operator:" in i or "/worker-cpu:" in i]
    for command in ("kind load docker-image --name tts", "k3d image import --cluster tts"):
        (line,) = [ln for ln in PAGE.splitlines() if ln.startswith(command)]
        assert line.split()[-len(wanted):] == wanted, line
    assert "make images" in PAGE and "kind create cluster --name tts" in PAGE
    assert "k3d cluster create tts" in PAGE


def test_the_packaged_chart_is_named_as_helm_names_it() -> None:
    version = cf.load_values(cf.CHART / "Chart.yaml")["version"]
    assert f"dist/elastic-tts-{version}.tgz" in PAGE


def test_every_value_the_page_names_exists() -> None:
    values = cf.load_values(cf.CHART / "values.yaml")
    named = set(re.findall(r"`((?:[a-z][A-Za-z]*\.)+[a-z][A-Za-z]*)(?:[:=][^`]*)?`", PAGE))
    named |= {n for n in re.findall(r"`([a-z][A-Za-z]+)(?:: [^`]*)?`", PAGE) if n in values}
    checked = 0
    for dotted in sorted(named):
        if dotted.split(".")[0] not in values:
            continue  # a file name (install.yaml) or a spec field (spec.image)
        node: Any = values
        for part in dotted.split("."):
            assert isinstance(node, dict) and part in node, dotted
            node = node[part]
        checked += 1
    assert checked >= 15
