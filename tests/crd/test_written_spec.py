"""What `elastic-tts simulate --write-spec` writes is a TTSService the real API server
accepts (a dry-run create with strict field validation against the installed CRD), and
what it stores after defaulting is the spec that was simulated."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from elastic_tts.cli import main
from elastic_tts.commands.specfile import load_spec_file
from elastic_tts.policy.spec import parse_spec
from elastic_tts.simulator.defaults import default_spec
from elastic_tts_dev.cluster import LocalCluster
from tests.cluster.fixtures import Installation
from tests.crd import crd_files
from tests.crd.apiserver import ApiServerValidator


@pytest.mark.parametrize("source", [None, *crd_files.EXAMPLES],
                         ids=lambda p: "default pools" if p is None else p.name)
def test_the_written_spec_is_accepted_and_means_what_was_simulated(
        installed: Installation, local_cluster: LocalCluster, namespace: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], source: Path | None) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("timestamp,characters\n" + "".join(f"{i},{100 + i}\n" for i in range(120)),
                     encoding="utf-8")
    written = tmp_path / "written.yaml"
    argv = ["simulate", "--trace", str(trace), "--no-plot", "--json", "--write-spec",
            str(written), *([] if source is None else ["--spec", str(source)])]
    assert main(argv) == 0, capsys.readouterr().err
    simulated = default_spec() if source is None else load_spec_file(source)
    verdict = ApiServerValidator(local_cluster.api, namespace).verdict(
        yaml.safe_load(written.read_text(encoding="utf-8")))
    assert verdict.problems == []
    assert verdict.stored is not None
    assert parse_spec(verdict.stored) == simulated
