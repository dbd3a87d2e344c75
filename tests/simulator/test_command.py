"""`elastic-tts simulate`: JSON, table, plot, and every bad input ending in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from elastic_tts.cli import main
from elastic_tts.commands.specfile import load_spec_file

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
    assert {"trace", "policies", "bounds", "at_equal_slo", "verdict"} <= set(result)
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
    assert result["at_equal_slo"].startswith("at equal SLO: ")
    assert "runs" not in result  # one seed
    assert result["trace"]["requests"] == 1200
    assert result["trace"]["dispatch"] == "route"  # the default pools enable routing
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    verdict = result["verdict"]
    assert verdict["slo_target"] == 0.99
    meeting = {name: figures["cost"] for name, figures in result["policies"].items()
               if figures and name != "oracle" and figures["slo_attainment"] >= 0.99}
    assert verdict["policy"] == min(meeting, key=meeting.__getitem__)
    hours = result["trace"]["seconds"] / 3600
    assert verdict["monthly_cost"] == pytest.approx(meeting[verdict["policy"]] * 730 / hours,
                                                    abs=0.01)


def test_the_table_ends_with_the_verdict_and_the_written_spec_is_what_ran(
        capsys, small_trace, tmp_path):
    written = tmp_path / "specs" / "mine.yaml"
    code, out, _ = run(capsys, "simulate", "--spec", str(FULL), "--trace", str(small_trace),
                       "--no-plot", "--write-spec", str(written))
    assert code == 0
    lines = out.splitlines()
    assert lines[-2].startswith("verdict   ")
    assert " a month at this traffic (730 h; the trace is 0.167 h)" in lines[-2]
    assert lines[-1] == f"spec      {written} (kubectl apply -f {written})"
    text = written.read_text(encoding="utf-8")
    assert text.splitlines()[1] == "# " + lines[-2].split(None, 1)[1]
    assert load_spec_file(written) == load_spec_file(FULL)
    assert yaml.safe_load(text)["metadata"] == {"name": "my-tts"}


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
    assert "\nat equal SLO: " in out and "\nverdict   " in out
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
        (["--write-spec", "/proc/forbidden/x.yaml"], "--write-spec /proc/forbidden/x.yaml: "
         "cannot write"),
        (["--write-spec", "/tmp"], "--write-spec /tmp: is a directory, not a file"),
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
        (["--seed", "1.5"], "argument --seed: must be a whole number"),
        (["--seed", "9" * 40], "argument --seed: must be a whole number"),
        (["--scale", "1e9"], "--scale must be at most 1000"),
        (["--speedup", "1e300"], "--speedup must be at most 10000"),
        (["--spot-shortage-minutes", "inf"], "--spot-shortage-minutes must be a finite"),
        (["--slo-target", "1.5"], "argument --slo-target: must be at most 1"),
        (["--slo-target", "0"], "argument --slo-target: must be greater than 0"),
        (["--dispatch", "random"], "invalid choice: 'random'"),
        (["--seeds", "1,,2"], "argument --seeds: must be a whole number"),
        (["--seeds", "1,1"], "argument --seeds: repeats a seed"),
        (["--seeds", "1,x"], "argument --seeds: must be a whole number"),
        (["--seeds", ",".join(map(str, range(40)))], "argument --seeds: must be at most 32"),
        (["--spot-wave-fraction", "2"], "--spot-wave-fraction must be at most 1"),
        (["--worker-max-queue", "0"], "argument --worker-max-queue: must be from 1 to 4096"),
        (["--clients", "patient"], "invalid choice: 'patient'"),
        (["--spot-notice", "nan"], "--spot-notice must be a finite number"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        main(["simulate", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_output_paths_are_checked_before_the_work(capsys, tmp_path):
    """The built-in day takes seconds to simulate; a bad --plot is reported at once, and
    nothing is left behind by the check."""
    started = time.monotonic()
    code, out, err = run(capsys, "simulate", "--write-spec", str(tmp_path / "ok.yaml"),
                         "--plot", "/proc/forbidden/x.png")
    assert (code, out) == (2, "")
    assert time.monotonic() - started < 3.0, err
    assert not (tmp_path / "ok.yaml").exists()


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
