"""`elastic-tts explain`: output, and every bad input ending in one clear line."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import elastic_tts
from elastic_tts.cli import build_parser, main

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
        ("negative load", ["--load", "-5"], "argument --load: must not be negative"),
        ("non-numeric load", ["--load", "lots"], "argument --load: must be a number"),
        ("infinite load", ["--load", "inf"], "argument --load: must be a finite number"),
        ("bad time", ["--load", "5", "--at", "tomorrow"],
         "argument --at: must be an ISO-8601 time"),
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


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    installed = importlib.metadata.version("elastic-tts")
    assert installed == elastic_tts.__version__  # the two statements of it cannot drift
    assert out.startswith(f"elastic-tts {installed} (TTSService elastictts.io/v1alpha1, "
                          "Python 3.")


def _example_commands(help_text: str) -> list[list[str]]:
    """The examples of a help, each as argv; continued lines joined, comments dropped."""
    block = help_text.split("examples:\n", 1)[1].replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_every_help_ends_with_examples_that_parse(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {"elastic-tts": parser.format_help()} | {
        name: sub.format_help() for name, sub in commands.choices.items()}
    assert set(helps) == {"elastic-tts", "explain", "simulate", "calibrate", "status", "run"}
    for name, text in helps.items():
        assert "\nexamples:\n" in text, f"{name} --help has no examples"
        examples = _example_commands(text)
        assert examples, name
        for argv in examples:
            assert argv[0] == "elastic-tts"
            if "COMMAND" in argv:
                continue
            build_parser().parse_args(argv[1:])  # exits 2 on an example that is wrong
            assert capsys.readouterr().err == ""


MISTYPED = [
    ("misspelt subcommand flag (issue)", ["simulate", "--seeed", "3"],
     "usage: elastic-tts simulate", "unknown flag --seeed (did you mean --seed"),
    ("misspelt required flag (issue)", ["explain", "--spec", "x.yaml", "--laod", "100"],
     "usage: elastic-tts explain", "unknown flag --laod (did you mean --load?)"),
    ("misspelt command", ["simulat"], "usage: elastic-tts [-h]",
     "unknown command 'simulat' (did you mean simulate?)"),
    ("misspelt top-level flag", ["--verison"], "usage: elastic-tts [-h]",
     "unknown flag --verison (did you mean --version?)"),
    ("no close name", ["status", "--colour"], "usage: elastic-tts status",
     "unknown flag --colour\n"),
    ("flag=value form", ["explain", "--lod=3"], "usage: elastic-tts explain",
     "unknown flag --lod (did you mean --load?)"),
    ("no abbreviations", ["explain", "--spec", "x", "--lo", "3"], "usage: elastic-tts explain",
     "unknown flag --lo"),
]


@pytest.mark.parametrize(("label", "argv", "usage", "message"), MISTYPED,
                         ids=[row[0] for row in MISTYPED])
def test_mistakes_are_reported_at_the_subcommand_with_did_you_mean(
        capsys: pytest.CaptureFixture[str], label: str, argv: list[str], usage: str,
        message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith(usage), err
    assert message in err
    assert "required" not in err
