"""The worker under a real gunicorn: multiprocess metrics, the concurrency limit, the drain."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from elastic_tts_dev.fake_engines import GUNICORN_APP
from elastic_tts_dev.processes import free_port
from elastic_tts_dev.servers import Reply, Server
from tests.required import require

ServerFactory = Callable[..., Server]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[ServerFactory]:
    servers: list[Server] = []

    def make(env: dict[str, str], app: str = GUNICORN_APP, workers: int = 1) -> Server:
        env = {"TTS_ENGINE": "test-silence", "TTS_WORKERS": str(workers),
               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"), **env}
        server = Server.gunicorn(app, env, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        server.wait_ready(consecutive=workers * 3)
        return server

    yield make
    for server in servers:
        server.stop()


def metric(server: Server, name: str, **labels: str) -> float:
    text = server.get("/metrics").body.decode()
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def requests_by_pid(prom_dir: Path) -> dict[str, float]:
    """tts_requests_total per worker process, read from each process's own file."""
    counts = {}
    for path in prom_dir.glob("counter_*.db"):
        merged = multiprocess.MultiProcessCollector.merge([str(path)], accumulate=False)
        counts[path.stem.split("_")[1]] = sum(
            s.value for m in merged if m.name == "tts_requests" for s in m.samples
            if s.name == "tts_requests_total")
    return counts


def test_metrics_add_up_across_worker_processes(start: ServerFactory, tmp_path: Path) -> None:
    prom = tmp_path / "prom"
    prom.mkdir()
    (prom / "counter_999999.db").write_bytes(b"stale file from an earlier run")
    server = start({"TTS_FAKE_DELAY": "0.05", "TTS_SERVICE": "reader", "TTS_POOL": "cpu",
                    "TTS_MAX_CONCURRENCY": "16", "TTS_CACHE_ENTRIES": "0"}, workers=2)
    assert not (prom / "counter_999999.db").exists()  # wiped when the master started
    sent = chars = 0
    with ThreadPoolExecutor(8) as pool:
        # Until both workers have served some: the kernel picks who accepts.
        for _ in range(20):
            texts = [f"第{sent + i}句。" for i in range(16)]
            replies = list(pool.map(lambda t: server.post("/tts", {"text": t}), texts))
            assert all(r.status == 200 for r in replies)
            sent += len(texts)
            chars += sum(len(t) for t in texts)
            served = requests_by_pid(prom)
            if len([n for n in served.values() if n > 0]) >= 2:
                break
    assert len([n for n in served.values() if n > 0]) == 2, served
    for _ in range(6):  # whichever worker answers the scrape, it reports the sum
        assert metric(server, "tts_requests_total", service="reader", pool="cpu",
                      status="200") == sent
        assert metric(server, "tts_characters_total", service="reader", pool="cpu") == chars
        assert metric(server, "tts_request_duration_seconds_count") == sent
        assert metric(server, "tts_engine_info", engine="test-silence", device="cpu") == 1
        assert metric(server, "tts_inflight_requests") == 0


def test_admission_queues_what_fits_the_slo_and_refuses_the_rest(start: ServerFactory) -> None:
    # 2 slots, 1.5 s a request, a measured-looking 2 chars/s: three 3-character requests
    # queued behind two in service would wait beyond the 5 s SLO of their length.
    server = start({"TTS_FAKE_DELAY": "1.5", "TTS_MAX_CONCURRENCY": "2", "TTS_MAX_QUEUE": "8",
                    "TTS_THROUGHPUT": "2", "TTS_CACHE_ENTRIES": "0"})
    with ThreadPoolExecutor(5) as pool:
        replies = list(pool.map(lambda i: server.post("/tts", {"text": f"请求{i}"}), range(5)))
    statuses = sorted(r.status for r in replies)
    assert statuses.count(200) >= 2 and set(statuses) <= {200, 429}, statuses
    refused = [r for r in replies if r.status == 429]
    assert refused, "nothing was refused"
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert all(r.json()["error"] == "overloaded" for r in refused)  # type: ignore[index]
    assert metric(server, "tts_requests_total", status="429") == len(refused)
    assert metric(server, "tts_refusals_total", reason="slo") == len(refused)


def test_sigterm_drains_without_dropping_in_flight_requests(start: ServerFactory) -> None:
    server = start({"TTS_FAKE_DELAY": "4", "TTS_MAX_CONCURRENCY": "6",
                    "TTS_CACHE_ENTRIES": "0", "TTS_DRAIN_LINGER": "0.5"}, workers=2)
    texts = [f"正在进行的请求{i}" for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        in_flight = [pool.submit(server.post, "/tts", {"text": t}) for t in texts]
        deadline = time.monotonic() + 10
        while metric(server, "tts_inflight_requests") < len(texts):
            assert time.monotonic() < deadline, "requests never got in flight"
            time.sleep(0.05)
        sent_at = time.monotonic()
        server.terminate()

        ready = server.get("/readyz")
        while ready.status == 200 and time.monotonic() - sent_at < 2:
            ready = server.get("/readyz")  # the master forwards SIGTERM within moments
        assert ready.status == 503 and ready.json()["error"] == "draining"  # type: ignore[index]
        refused = server.post("/tts", {"text": "新的请求"})
        assert refused.status == 503
        assert refused.json()["error"] == "draining"  # type: ignore[index]

        replies: list[Reply] = [future.result(timeout=20) for future in in_flight]
    assert [r.status for r in replies] == [200] * len(texts)
    for text, reply in zip(texts, replies, strict=True):
        assert len(reply.body) == 44 + 2 * 160 * len(text)  # the whole WAV arrived
    assert server.wait(timeout=30) == 0
    with pytest.raises(OSError):
        server.get("/healthz")


def test_the_console_script_serves_espeak(tmp_path: Path) -> None:
    require("espeak-ng")
    port, probe_port = free_port(), free_port()
    script = Path(sys.executable).with_name("elastic-tts-worker")
    server = Server([str(script), "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--probe-port", str(probe_port), "--engine", "espeak", "--workers", "1"],
                    {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}, port,
                    tmp_path / "serve.log", probe_port)
    try:
        server.wait_ready()
        reply = server.post("/tts", {"text": "你好，世界。"})
        assert reply.status == 200 and reply.body[:4] == b"RIFF"
        # serve sets glibc's malloc knobs before it becomes gunicorn (same PID).
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
        assert b"MALLOC_MMAP_THRESHOLD_=131072" in environ and b"MALLOC_ARENA_MAX=2" in environ
        assert reply.headers["Content-Type"] == "audio/wav"
        server.terminate()
        assert server.wait(timeout=30) == 0
    finally:
        server.stop()


@pytest.mark.parametrize(("argv", "environ", "api", "probes"), [
    (["--port", "9000"], {}, "0.0.0.0:9000", "0.0.0.0:9001"),
    (["--host", "127.0.0.1", "--port", "9000", "--probe-port", "7000"], {}, "127.0.0.1:9000",
     "127.0.0.1:7000"),
    (["--port", "9000"], {"TTS_PROBE_BIND": "0.0.0.0:8181"}, "0.0.0.0:9000", "0.0.0.0:8181"),
    ([], {}, None, None),
])
def test_serve_flags_place_the_probe_listener(monkeypatch: pytest.MonkeyPatch,
                                              argv: list[str], environ: dict[str, str],
                                              api: str | None, probes: str | None) -> None:
    from tts_worker.cli import build_parser, flag_environment

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    env = flag_environment(build_parser().parse_args(["serve", *argv]))
    assert (env.get("TTS_BIND"), env.get("TTS_PROBE_BIND")) == (api, probes)
