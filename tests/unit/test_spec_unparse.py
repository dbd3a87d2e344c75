"""The spec written back as a resource (`simulate --write-spec`): it parses to the same
spec, and leaves out what is at its default."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from elastic_tts.policy import load_spec, parse_spec
from elastic_tts.policy.spec.unparse import resource
from elastic_tts.simulator.defaults import default_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_round_trips(path: Path) -> None:
    spec = load_spec(path.read_text(encoding="utf-8"), str(path))
    written = resource(spec, "my-tts")
    # Through YAML text, as the file is written and read back.
    assert parse_spec(yaml.safe_load(yaml.safe_dump(written))) == spec


def test_the_default_pools_round_trip_and_defaults_are_left_out() -> None:
    spec = default_spec()
    written = resource(spec, "my-tts", namespace="tts")
    assert written["metadata"] == {"name": "my-tts", "namespace": "tts"}
    assert parse_spec(written) == spec
    cpu = written["spec"]["pools"]["cpu"]
    assert "capacityType" not in cpu  # on-demand is the default
    assert "coldStartSeconds" not in cpu  # 30 s is what the CPU default derives
    # not the field default of 10: the default pools set their own ceiling
    assert written["spec"]["pools"]["gpu"]["maxReplicas"] == spec.pools["gpu"].max_replicas != 10
    assert "schedule" not in written["spec"]  # a section left at its defaults


def test_a_minimal_spec_writes_only_what_was_given() -> None:
    given = {"pools": {"cpu": {"accelerator": "cpu", "costPerHour": 0.1, "throughput": 20}}}
    assert resource(parse_spec(given), "x")["spec"] == given
