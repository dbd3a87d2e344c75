"""The spec model: defaults, and one message per problem naming the field path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from elastic_tts.commands.specfile import load_spec_file
from elastic_tts.policy import SpecError, load_spec, parse_spec
from tests.unit.specs import CPU, GPU, SPOT, three_pools

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests" / "examples").glob("*.yaml"))


def test_defaults_are_applied() -> None:
    spec = parse_spec({"pools": {"cpu": {"accelerator": "cpu", "costPerHour": 0.1,
                                         "throughput": 20}}})
    pool = spec.pools["cpu"]
    assert (pool.capacity_type, pool.min_replicas, pool.max_replicas) == ("on-demand", 0, 10)
    assert pool.cold_start_seconds == 30  # CPU default; GPU is 120
    assert pool.concurrency == 1
    assert spec.scaling.target_utilization == 0.7
    assert spec.scaling.scale_down_stabilization_seconds == 300
    assert spec.schedule.timezone == "UTC" and spec.schedule.windows == ()
    assert not spec.paused and not spec.routing.enabled


def test_the_whole_resource_or_just_the_spec() -> None:
    body = three_pools()
    whole = parse_spec({"apiVersion": "elastictts.io/v1alpha1", "kind": "TTSService",
                        "metadata": {"name": "x"}, "spec": body})
    assert whole == parse_spec(body)


def test_pools_keep_their_written_order() -> None:
    spec = parse_spec(three_pools())
    assert list(spec.pools) == ["gpu", "gpu-spot", "cpu"]


def test_models_are_immutable() -> None:
    spec = parse_spec(three_pools())
    with pytest.raises(AttributeError):
        spec.paused = True  # type: ignore[misc]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_shipped_example_parses(path: Path) -> None:
    spec = load_spec_file(path)
    assert spec.pools


def test_durations_and_windows() -> None:
    spec = parse_spec({**three_pools(), "schedule": {"timezone": "Asia/Shanghai", "windows": [
        {"name": "a", "start": "0 9 * * 1-5", "duration": "1h30m", "pools": {"gpu": {
            "minReplicas": 2}}},
        {"name": "b", "start": "0 1 * * *", "duration": 7200, "mode": "shutdown"},
    ]}})
    first, second = spec.schedule.windows
    assert first.duration_seconds == 5400 and first.pools["gpu"].min_replicas == 2
    assert second.duration_seconds == 7200 and second.mode == "shutdown"


def _with_pool(name: str, **fields: Any) -> dict[str, Any]:
    body = three_pools()
    body["pools"][name] = {**body["pools"].get(name, {}), **fields}
    return body


INVALID = [
    ("min > max", _with_pool("cpu", minReplicas=5, maxReplicas=2),
     "spec.pools.cpu.minReplicas: must not exceed maxReplicas (5 > 2)"),
    ("negative min", _with_pool("cpu", minReplicas=-1),
     "spec.pools.cpu.minReplicas: must be at least 0, got -1"),
    ("fallbackTo unknown", _with_pool("gpu-spot", fallbackTo="gpu-big"),
     "spec.pools.gpu-spot.fallbackTo: no on-demand pool named 'gpu-big'"),
    ("fallbackTo spot", {"pools": {"s1": dict(SPOT, fallbackTo="s2"),
                                   "s2": dict(SPOT, fallbackTo=None)}},
     "spec.pools.s1.fallbackTo: no on-demand pool named 's2'"),
    ("fallbackTo on on-demand", _with_pool("cpu", fallbackTo="gpu"),
     "spec.pools.cpu.fallbackTo: only spot pools fall back"),
    ("bad accelerator", _with_pool("cpu", accelerator="tpu"),
     "spec.pools.cpu.accelerator: must be one of gpu, cpu, got 'tpu'"),
    ("bad capacity type", _with_pool("cpu", capacityType="reserved"),
     "spec.pools.cpu.capacityType: must be one of on-demand, spot"),
    ("zero throughput", _with_pool("cpu", throughput=0),
     "spec.pools.cpu.throughput: must be greater than 0"),
    ("string cost", _with_pool("cpu", costPerHour="cheap"),
     "spec.pools.cpu.costPerHour: must be a number, got 'cheap'"),
    ("missing required", {"pools": {"cpu": {"accelerator": "cpu"}}},
     "spec.pools.cpu.costPerHour: is required"),
    ("unknown pool field", _with_pool("cpu", maxReplica=3),
     "spec.pools.cpu.maxReplica: unknown field"),
    ("bad pool name", {"pools": {"GPU_1": dict(GPU)}}, "spec.pools.GPU_1: pool names are"),
    ("no pools", {"pools": {}}, "spec.pools: must have at least 1 entry"),
    ("pools missing", {}, "spec.pools: is required"),
    ("utilisation > 1", three_pools(targetUtilization=1.5),
     "spec.scaling.targetUtilization: must be at most 1, got 1.5"),
    ("burst headroom below 1", three_pools(burstHeadroom=0.8),
     "spec.scaling.burstHeadroom: must be at least 1, got 0.8"),
    ("burst headroom a string", three_pools(burstHeadroom="lots"),
     "spec.scaling.burstHeadroom: must be a number, got 'lots'"),
    ("utilisation 0", three_pools(targetUtilization=0),
     "spec.scaling.targetUtilization: must be greater than 0"),
    ("bad metric", three_pools(metric="bytes"), "spec.scaling.metric: must be one of"),
    ("spot fraction", three_pools(maxSpotFraction=2), "spec.scaling.maxSpotFraction"),
    ("prometheus url", three_pools(prometheus={"url": "prometheus:9090"}),
     "spec.scaling.prometheus.url: must start with http://"),
    ("fallbackReplicas pool", three_pools(fallbackReplicas={"tpu": 1}),
     "spec.scaling.fallbackReplicas.tpu: spec.pools has no entry of that name"),
    ("fallbackReplicas missing", three_pools(onMetricsUnavailable="fallbackReplicas"),
     "spec.scaling.fallbackReplicas: is required when onMetricsUnavailable"),
    ("bad cron", {**three_pools(), "schedule": {"windows": [
        {"name": "w", "start": "0 25 * * *", "duration": "1h"}]}},
     "spec.schedule.windows[0].start: invalid cron expression '0 25 * * *'"),
    ("cron field count", {**three_pools(), "schedule": {"windows": [
        {"name": "w", "start": "0 9 * *", "duration": "1h"}]}},
     "spec.schedule.windows[0].start: must have five fields"),
    ("bad timezone", {**three_pools(), "schedule": {"timezone": "Europe/Atlantis"}},
     "spec.schedule.timezone: unknown IANA timezone 'Europe/Atlantis'"),
    ("bad duration", {**three_pools(), "schedule": {"windows": [
        {"name": "w", "start": "0 9 * * *", "duration": "soon"}]}},
     "spec.schedule.windows[0].duration: expected a duration like '8h'"),
    ("zero duration", {**three_pools(), "schedule": {"windows": [
        {"name": "w", "start": "0 9 * * *", "duration": "0h"}]}},
     "spec.schedule.windows[0].duration: must be positive"),
    ("window unknown pool", {**three_pools(), "schedule": {"windows": [
        {"name": "w", "start": "0 9 * * *", "duration": "1h", "pools": {"tpu": {}}}]}},
     "spec.schedule.windows[0].pools.tpu: spec.pools has no entry of that name"),
    ("window min > max", {**three_pools(), "schedule": {"windows": [
        {"name": "w", "start": "0 9 * * *", "duration": "1h",
         "pools": {"gpu": {"minReplicas": 3, "maxReplicas": 1}}}]}},
     "spec.schedule.windows[0].pools.gpu.minReplicas: must not exceed maxReplicas"),
    ("bad mode", {**three_pools(), "schedule": {"windows": [
        {"name": "w", "start": "0 9 * * *", "duration": "1h", "mode": "off"}]}},
     "spec.schedule.windows[0].mode: must be one of normal, shutdown, cpu-only"),
    ("duplicate window", {**three_pools(), "schedule": {"windows": [
        {"name": "w", "start": "0 9 * * *", "duration": "1h"},
        {"name": "w", "start": "0 10 * * *", "duration": "1h"}]}},
     "spec.schedule.windows[1].name: duplicate name 'w'"),
    ("routing without gateway", {**three_pools(), "routing": {"enabled": True}},
     "spec.routing.gatewayRef.name: is required when enabled is true"),
    ("paused not bool", {**three_pools(), "paused": "yes"},
     "spec.paused: must be true or false, got 'yes'"),
    ("unknown top-level", {**three_pools(), "replicas": 3}, "spec.replicas: unknown field"),
    ("bad engine", {**three_pools(), "engine": "festival"}, "spec.engine: must be one of"),
]


@pytest.mark.parametrize(("label", "data", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_specs_name_the_field(label: str, data: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as error:
        parse_spec(data)
    assert any(p.startswith(message) for p in error.value.problems), error.value.problems


def test_every_problem_is_reported_at_once() -> None:
    data = three_pools(targetUtilization=3, metric="bytes")
    data["pools"]["cpu"]["minReplicas"] = 9
    with pytest.raises(SpecError) as error:
        parse_spec(data)
    assert len(error.value.problems) == 3


def test_yaml_that_is_not_a_mapping() -> None:
    with pytest.raises(SpecError, match="the YAML must be a mapping, got a list"):
        load_spec("- a\n- b\n", "x.yaml")
    with pytest.raises(SpecError, match="not valid YAML at line 2: expected"):
        load_spec("pools: {unclosed\n", "x.yaml")


def test_wrong_kind_and_api_version() -> None:
    with pytest.raises(SpecError, match="not a TTSService: kind is 'Deployment'"):
        parse_spec({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}})
    wanted = "apiVersion: expected elastictts.io/v1alpha1, got 'elastictts.io/v1'"
    with pytest.raises(SpecError, match=re.escape(wanted)):
        parse_spec({"apiVersion": "elastictts.io/v1", "kind": "TTSService", "spec": {}})
    with pytest.raises(SpecError, match=r"^spec: is required$"):
        parse_spec({"apiVersion": "elastictts.io/v1alpha1", "kind": "TTSService"})


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_spec_file(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="is a directory"):
        load_spec_file(tmp_path)


def test_burst_headroom_is_observed_unless_the_spec_sets_it() -> None:
    assert parse_spec(three_pools()).scaling.burst_headroom is None
    assert parse_spec(three_pools(burstHeadroom=1.5)).scaling.burst_headroom == 1.5


def test_cpu_and_gpu_defaults_differ() -> None:
    spec = parse_spec({"pools": {"g": {k: v for k, v in GPU.items() if k != "coldStartSeconds"},
                                 "c": {k: v for k, v in CPU.items() if k != "coldStartSeconds"}}})
    assert spec.pools["g"].cold_start_seconds == 120
    assert spec.pools["c"].cold_start_seconds == 30


_CPU_YAML = "pools:\n  cpu: {accelerator: cpu, costPerHour: 0.1, throughput: 20%s}\n"

# Hostile YAML, as a user might write or paste it: each gets one line naming the field.
HOSTILE_YAML = [
    ("NaN", _CPU_YAML % ", minReplicas: .nan",
     "spec.pools.cpu.minReplicas: must be a finite number, got nan"),
    ("infinity", _CPU_YAML % ", coldStartSeconds: .inf",
     "spec.pools.cpu.coldStartSeconds: must be a finite number, got inf"),
    ("1e30", _CPU_YAML % ", coldStartSeconds: 1.0e+30",
     "spec.pools.cpu.coldStartSeconds: must be at most 3600, got 1e+30"),
    ("a 300-digit number", _CPU_YAML % f", maxReplicas: {'9' * 300}",
     "spec.pools.cpu.maxReplicas: must be at most 1000, got a number of about 300 digits"),
    ("a 5000-digit number", _CPU_YAML % f", maxReplicas: {'9' * 5000}",
     "x.yaml: unreadable value"),
    ("5000-deep nesting in a pass-through field",
     _CPU_YAML % (", affinity: " + "[" * 5000 + "]" * 5000),
     "x.yaml: pools.cpu.affinity[0][0][0][0][0]...: nested deeper than 64 levels"),
    ("40-deep nesting in a pass-through field",
     _CPU_YAML % (", affinity: {a: " + "[" * 40 + "]" * 40 + "}"),
     "spec.pools.cpu.affinity: nested deeper than 32 levels"),
    ("deep nesting where a number belongs", _CPU_YAML % (", maxReplicas: " + "[" * 50 + "]" * 50),
     "spec.pools.cpu.maxReplicas: must be a whole number, got a list"),
    ("an alias bomb", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d]\n"
     + _CPU_YAML % ", resources: {limits: *e}",
     "spec.pools.cpu.resources: more than 10000 values"),
    ("a long string", _CPU_YAML % (", fallbackTo: " + "x" * 10_000),
     "spec.pools.cpu.fallbackTo: must be at most 40 characters, got 10000"),
]


@pytest.mark.parametrize(("label", "text", "problem"), HOSTILE_YAML,
                         ids=[row[0] for row in HOSTILE_YAML])
def test_hostile_yaml_gets_one_line_naming_the_field(label: str, text: str,
                                                     problem: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(text, "x.yaml")
    assert any(p.startswith(problem) for p in error.value.problems), error.value.problems
    assert all("\n" not in p and len(p) < 300 for p in error.value.problems)


# Documents a user may hand over by mistake: each is told so in one line.
NOT_A_TTSSERVICE = [
    ("the chart's values", ROOT / "charts" / "elastic-tts" / "values.yaml",
     "values.yaml: not a TTSService spec: it has no kind: TTSService and no pools, and "
     "fields no TTSService has (global, nameOverride, fullnameOverride, imagePullSecrets, "
     "replicaCount and "),
    ("the chart's Chart.yaml", ROOT / "charts" / "elastic-tts" / "Chart.yaml",
     "Chart.yaml: not a TTSService: it has apiVersion 'v2' and no kind"),
    ("the install bundle", ROOT / "manifests" / "install.yaml",
     "install.yaml: none of its 7 YAML documents is a TTSService; give a file with one"),
]


@pytest.mark.parametrize(("label", "path", "problem"), NOT_A_TTSSERVICE,
                         ids=[row[0] for row in NOT_A_TTSSERVICE])
def test_a_document_that_is_not_a_ttsservice_is_told_so_in_one_line(
        label: str, path: Path, problem: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec_file(path)
    assert len(error.value.problems) == 1, error.value.problems
    assert problem in error.value.problems[0]


def test_a_bare_spec_with_a_stray_field_is_judged_field_by_field() -> None:
    with pytest.raises(SpecError) as error:
        parse_spec({**three_pools(), "replicaCount": 1})
    assert error.value.problems == [
        "spec.replicaCount: unknown field (allowed: emotions, engine, image, model, paused, "
        "pools, routing, scaling, schedule, voices)"]


def test_a_bundle_with_one_ttsservice_is_read() -> None:
    bundle = (ROOT / "manifests" / "install.yaml").read_text() + "\n---\n" + (
        ROOT / "manifests" / "examples" / "minimal.yaml").read_text()
    assert load_spec(bundle, "bundle.yaml") == load_spec_file(
        ROOT / "manifests" / "examples" / "minimal.yaml")
    two = (ROOT / "manifests" / "examples" / "minimal.yaml").read_text()
    with pytest.raises(SpecError, match="2 of its 2 YAML documents are TTSServices"):
        load_spec(two + "\n---\n" + two, "two.yaml")


def test_duplicate_keys_are_refused_not_silently_dropped() -> None:
    with pytest.raises(SpecError, match="line 3: duplicate key 'throughput'"):
        load_spec("pools:\n  cpu: {accelerator: cpu, costPerHour: 0.1, throughput: 20,\n"
                  "        throughput: 30}\n", "x.yaml")


def test_exponent_numbers_are_numbers_as_the_api_server_reads_them() -> None:
    spec = load_spec(_CPU_YAML % ", coldStartSeconds: 1e2", "x.yaml")
    assert spec.pools["cpu"].cold_start_seconds == 100.0
    with pytest.raises(SpecError, match="coldStartSeconds: must be at most 3600, got 1e\\+30"):
        load_spec(_CPU_YAML % ", coldStartSeconds: 1e30", "x.yaml")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    with pytest.raises(SpecError, match=r"empty\.yaml: is empty"):
        load_spec_file(tmp_path / "empty.yaml")
