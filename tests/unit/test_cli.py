"""`elastic-tts explain`: output, and every bad input ending in one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from elastic_tts.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
FULL = str(EXAMPLES / "full.yaml")
NOON_SHANGHAI = "2026-11-23T12:00:00+08:00"  # a Monday, inside weekday-peak


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_json_has_the_documented_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--spec", FULL, "--load", "410", "--at", NOON_SHANGHAI,
                       "--json")
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"replicas", "mode", "cost_per_hour", "reason"}
    assert set(result["replicas"]) == {"gpu", "gpu-spot", "cpu"}
    assert result["mode"] == "peak"
    assert result["replicas"]["gpu"] >= 1  # the weekday-peak window's floor
    assert "demand 586 chars/s" in result["reason"]


def test_explain_in_the_night_window_shuts_down(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--spec", FULL, "--load", "410",
                       "--at", "2026-11-23T03:00:00+08:00", "--json")
    result = json.loads(out)
    assert code == 0
    assert result["mode"] == "shutdown"
    assert result["replicas"] == {"gpu": 0, "gpu-spot": 0, "cpu": 0}
    assert result["cost_per_hour"] == 0


def test_explain_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--spec", str(EXAMPLES / "cpu-only.yaml"),
                       "--load", "50", "--at", "2026-11-23T12:00:00+08:00")
    assert code == 0
    assert "mode      off-peak" in out
    assert "cpu            3" in out  # 50/0.7 = 71.4 chars/s over 26.3 per replica


def test_metric_flag_overrides_the_spec(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--spec", str(EXAMPLES / "minimal.yaml"), "--load",
                       "0.2", "--metric", "requests", "--json")
    assert code == 0
    # 0.2 req/s / 0.7 = 0.29 req/s; one CPU replica serves 26.3/100 = 0.263 req/s
    assert json.loads(out)["replicas"] == {"cpu": 2}


@pytest.mark.parametrize(
    ("label", "argv", "needle"),
    [
        ("negative load", ["--load", "-5"], "--load must not be negative"),
        ("non-numeric load", ["--load", "lots"], "--load must be a number"),
        ("infinite load", ["--load", "inf"], "--load must be a finite number"),
        ("bad time", ["--load", "5", "--at", "tomorrow"], "--at must be an ISO-8601 time"),
        ("bad metric", ["--load", "5", "--metric", "bytes"], "--metric"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    capsys: pytest.CaptureFixture[str], label: str, argv: list[str], needle: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--spec", FULL, *argv])
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2, label
    assert needle in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("label", "content", "needle"),
    [
        ("not a mapping", "- just\n- a list\n", "the YAML must be a mapping, got a list"),
        ("not YAML", "pools: [unclosed\n", "not valid YAML"),
        ("min > max", "pools:\n  cpu: {accelerator: cpu, costPerHour: 1, throughput: 10, "
         "minReplicas: 5, maxReplicas: 2}\n", "spec.pools.cpu.minReplicas: must not exceed"),
        ("unknown fallback", "pools:\n  s: {accelerator: gpu, capacityType: spot, "
         "costPerHour: 1, throughput: 10, fallbackTo: gpu}\n",
         "spec.pools.s.fallbackTo: no on-demand pool named 'gpu'"),
        ("bad cron", "pools:\n  cpu: {accelerator: cpu, costPerHour: 1, throughput: 10}\n"
         "schedule:\n  windows: [{name: w, start: '61 * * * *', duration: 1h}]\n",
         "spec.schedule.windows[0].start: invalid cron expression"),
        ("bad timezone", "pools:\n  cpu: {accelerator: cpu, costPerHour: 1, throughput: 10}\n"
         "schedule: {timezone: Mars/Olympus}\n",
         "spec.schedule.timezone: unknown IANA timezone 'Mars/Olympus'"),
    ],
)
def test_bad_specs_exit_2_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, label: str, content: str, needle: str
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(content)
    code, _, err = run(capsys, "explain", "--spec", str(spec), "--load", "5")
    assert code == 2, label
    assert needle in err
    assert "Traceback" not in err


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "explain", "--spec", str(tmp_path / "nope.yaml"), "--load", "5")
    assert code == 2
    assert "nope.yaml: no such file" in err


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "elastic_tts.cli", "explain", "--spec", FULL, "--load", "1",
         "--json"], capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["mode"] in {"peak", "off-peak", "shutdown"}
