"""`elastic-tts calibrate` against a real espeak-ng worker on loopback: the stanza it prints
is a valid pool, its counts are the worker's own, and the worker it starts is timed to
Ready and stopped. Bounded in requests and seconds."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from elastic_tts.policy import parse_spec
from elastic_tts_dev.processes import free_port
from elastic_tts_dev.servers import Server, http

CALIBRATE_TIMEOUT = 120  # the ramps below are bounded at 30 s; start-up and a drain on top


def calibrate(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "elastic_tts.cli", "calibrate", *argv],
                          capture_output=True, text=True, timeout=CALIBRATE_TIMEOUT,
                          check=False)


def worker_command(port: int) -> list[str]:
    return [sys.executable, "-m", "tts_worker.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--engine", "espeak"]


def counters(url: str) -> dict[str, float]:
    """Sums of the worker's synthesis counters, from its own /metrics."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(http("GET", url + "/metrics").body.decode()):
        for sample in family.samples:
            if sample.name == "tts_requests_total" and sample.labels.get("status") == "200":
                totals["ok"] = totals.get("ok", 0.0) + sample.value
            if sample.name == "tts_characters_total":
                totals["chars"] = totals.get("chars", 0.0) + sample.value
    return totals


def test_it_starts_the_worker_times_it_to_ready_and_prints_a_pool(tmp_path: Path) -> None:
    port = free_port()
    started = time.monotonic()
    result = calibrate("--url", f"http://127.0.0.1:{port}", "--step-seconds", "2",
                       "--max-concurrency", "3", "--max-seconds", "30", "--pool", "cpu-small",
                       "--json", "--start-worker", "--", *worker_command(port))
    wall = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["engine"] == "espeak" and report["device"] == "cpu"
    assert [level["concurrency"] for level in report["levels"]] == [1, 2, 3]
    for level in report["levels"]:
        assert level["sent"] == level["ok"] == level["within_slo"] > 0, level
        assert level["failed"] == level["refused"] == 0
    assert 0 < report["cold_start_seconds"] < wall
    (pool,) = report["pool"].values()
    assert list(report["pool"]) == ["cpu-small"]
    best = max(level["good_chars_per_second"] for level in report["levels"])
    assert 0.95 * best <= pool["throughput"] <= best + 0.1
    assert pool["concurrency"] in (1, 2, 3)
    # The stanza is a pool the spec model accepts once it has a price.
    spec = parse_spec({"pools": {"cpu-small": {**pool, "costPerHour": 0.1}}})
    assert spec.pools["cpu-small"].throughput == pool["throughput"]
    # The worker it started is gone: its port refuses connections.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_its_counts_are_the_workers_own(tmp_path: Path) -> None:
    port = free_port()
    server = Server(worker_command(port), {}, port, tmp_path / "worker.log")
    try:
        server.wait_ready(60)
        before = counters(server.url)
        result = calibrate("--url", server.url, "--step-seconds", "2", "--max-concurrency",
                           "2", "--chars", "40", "--max-requests", "30", "--json")
        after = counters(server.url)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    sent = sum(level["sent"] for level in report["levels"])
    assert sent <= 30
    warmup = 2
    assert after["ok"] - before.get("ok", 0) == sent + warmup
    assert after["chars"] - before.get("chars", 0) == 40 * (sent + warmup)
    assert report["cold_start_seconds"] is None  # it did not start this one
    assert "coldStartSeconds" not in report["pool"]["cpu"]


def test_text_output_ends_with_the_stanza(tmp_path: Path) -> None:
    port = free_port()
    result = calibrate("--url", f"http://127.0.0.1:{port}", "--step-seconds", "1",
                       "--max-concurrency", "1", "--max-seconds", "10",
                       "--start-worker", "--", *worker_command(port))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"calibrated http://127.0.0.1:{port} (engine espeak on cpu)")
    assert any(line.startswith("cold start ") for line in lines)
    stanza = lines[lines.index(next(x for x in lines if x.startswith("# spec.pools"))) + 1:]
    pool = yaml.safe_load("\n".join(stanza))["cpu"]
    assert set(pool) == {"accelerator", "throughput", "concurrency", "coldStartSeconds"}
    assert pool["concurrency"] == 1 and pool["coldStartSeconds"] >= 1
