"""`elastic-tts simulate`: JSON, table, plot, and every bad input ending in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from elastic_tts.cli import main

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "manifests" / "examples" / "full.yaml"


@pytest.fixture
def small_trace(tmp_path: Path) -> Path:
    """Ten minutes of a steady 2 requests/s."""
    rows = "\n".join(f"{i / 2:.1f},{80 + i % 120}" for i in range(1200))
    path = tmp_path / "small.csv"
    path.write_text("timestamp,characters\n" + rows + "\n", encoding="utf-8")
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


POLICIES = {"elastic-tts", "static-gpu", "hpa", "keda", "keda+karpenter", "keda-spot",
            "hpa-cpu", "cpu-only"}
FIGURES = {"cost", "cost_vs_floor", "cost_vs_oracle", "slo_attainment", "latency_p50",
           "latency_p95", "latency_p99", "scale_events", "gpu_hours"}


def test_json_is_one_object_with_every_policy_and_both_bounds(capsys, small_trace, tmp_path):
    code, out, _ = run(capsys, "simulate", "--trace", str(small_trace), "--json",
                       "--plot", str(tmp_path / "t.png"))
    assert code == 0
    result = json.loads(out)
    assert {"trace", "policies", "bounds", "verdict"} <= set(result)
    assert set(result["policies"]) == POLICIES
    for name, figures in result["policies"].items():
        assert figures is not None, name
        assert set(figures) >= FIGURES
        assert 0.0 <= figures["slo_attainment"] <= 1.0
    bounds = result["bounds"]
    assert bounds["work_floor"]["cost"] > 0
    oracle = bounds["oracle_same_slo"]
    if oracle is not None:
        assert set(oracle) == {"cost", "slo_attainment", "bucket_seconds", "utilization"}
        assert oracle["slo_attainment"] >= result["policies"]["elastic-tts"]["slo_attainment"]
    assert result["verdict"].startswith("verdict: ")
    assert "runs" not in result  # one seed
    assert result["trace"]["requests"] == 1200
    assert result["trace"]["dispatch"] == "route"  # the default pools enable routing
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_seeds_add_runs_and_a_summary(capsys, small_trace):
    code, out, _ = run(capsys, "simulate", "--trace", str(small_trace), "--json", "--no-plot",
                       "--seeds", "1,2,3")
    assert code == 0
    result = json.loads(out)
    assert [r["seed"] for r in result["runs"]] == [1, 2, 3]
    for one in result["runs"]:
        assert set(one["policies"]) == POLICIES and "bounds" in one
    summary = result["summary"]["elastic-tts"]
    assert set(summary) == {"cost_median", "cost_worst", "slo_median", "slo_worst"}
    costs = [r["policies"]["elastic-tts"]["cost"] for r in result["runs"]]
    assert summary["cost_worst"] == pytest.approx(max(costs))
    assert summary["slo_worst"] <= summary["slo_median"]


def test_table_names_the_dispatch_the_bounds_and_the_verdict(capsys, small_trace, tmp_path):
    plot = tmp_path / "deep" / "timeline.png"
    code, out, err = run(capsys, "simulate", "--trace", str(small_trace), "--plot", str(plot),
                         "--dispatch", "service")
    assert code == 0
    assert "dispatch  plain Service: a random endpoint per connection" in out
    assert "elastic-tts, HTTPRoute" in out  # the other dispatch, for comparison
    assert "work floor" in out and "÷ oracle" in out and "÷ floor" in out
    assert "\nverdict: " in out
    assert f"timeline  {plot}" in out
    assert plot.exists()
    assert err == ""  # no progress bar when stderr is not a terminal


def test_user_spec_is_simulated(capsys, small_trace):
    code, out, _ = run(capsys, "simulate", "--spec", str(FULL), "--trace", str(small_trace),
                       "--no-plot", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["trace"]["dispatch"] == "route"  # full.yaml enables routing
    assert result["trace"]["plot"] is None


def test_cpu_only_is_left_out_when_it_cannot_meet_the_slo(capsys, small_trace, tmp_path):
    spec = tmp_path / "slow-cpu.yaml"
    spec.write_text(
        "pools:\n"
        "  gpu: {accelerator: gpu, costPerHour: 0.5, throughput: 83.3}\n"
        "  cpu: {accelerator: cpu, costPerHour: 0.1, throughput: 10}\n", encoding="utf-8")
    code, out, _ = run(capsys, "simulate", "--spec", str(spec), "--trace", str(small_trace),
                       "--no-plot", "--json")
    result = json.loads(out)
    assert code == 0
    assert result["policies"]["cpu-only"] is None
    assert "no CPU pool serves 100 characters within 5 s" in result["trace"]["omitted"]["cpu-only"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--trace", "/nonexistent.csv"], "/nonexistent.csv: no such file"),
        (["--spec", "/nonexistent.yaml"], "/nonexistent.yaml: no such file"),
        (["--plot", "/proc/forbidden/x.png"], "--plot /proc/forbidden/x.png: cannot write"),
    ],
)
def test_bad_files_exit_2_with_one_line(capsys, small_trace, argv, message):
    code, out, err = run(capsys, "simulate", "--trace", str(small_trace), *argv)
    assert code == 2
    assert out == ""  # no half-printed table
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scale", "0"], "--scale must be greater than 0"),
        (["--scale", "x"], "--scale must be a number"),
        (["--speedup", "-2"], "--speedup must not be negative"),
        (["--seed", "1.5"], "--seed must be a whole number"),
        (["--dispatch", "random"], "invalid choice: 'random'"),
        (["--seeds", "1,,2"], "--seeds must be seeds separated by commas"),
        (["--seeds", "1,1"], "--seeds repeats a seed"),
        (["--seeds", "1,x"], "--seeds must be whole numbers"),
        (["--spot-wave-fraction", "2"], "--spot-wave-fraction must be between 0 and 1"),
        (["--worker-max-queue", "0"], "--worker-max-queue must be a whole number of at least 1"),
        (["--clients", "patient"], "invalid choice: 'patient'"),
        (["--spot-notice", "nan"], "--spot-notice must be a finite number"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        main(["simulate", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_malformed_trace_never_shows_a_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,characters\n0,100\n1,lots\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "elastic_tts.cli", "simulate", "--trace",
                           str(bad)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"elastic-tts: {bad}:3: characters must be a whole number, "
                                   "got 'lots'")


@pytest.mark.slow
def test_the_default_day_end_to_end(capsys, tmp_path):
    """The whole built-in day with the default pools, as `make demo` runs it."""
    code, out, _ = run(capsys, "simulate", "--json", "--plot", str(tmp_path / "day.png"))
    assert code == 0
    result = json.loads(out)
    floor = result["bounds"]["work_floor"]["cost"]
    assert all(figures["cost"] >= floor for figures in result["policies"].values())
    assert result["policies"]["elastic-tts"]["slo_attainment"] >= 0.995
