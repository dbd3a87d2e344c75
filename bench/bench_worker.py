"""Worker benchmarks, each against a real gunicorn on loopback (`make bench`).

1. HTTP and validation overhead: POST /tts with a no-op engine (instant silent audio, the
   tests' `test-silence`), p50/p99 at concurrency 1 and 8. Goal: p50 <= 3 ms.
2. espeak throughput, characters/s: the worker against the raw espeak-ng CLI with the same
   arguments on the same texts, one at a time and four at a time. Goal: >= 0.9x.
3. Latency of a cache hit, next to the miss it saves.

Latencies are client-side, from sending the request to reading the whole body, over
kept-alive connections, so they include Python's HTTP client.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from elastic_tts_dev.fake_engines import GUNICORN_APP
from elastic_tts_dev.servers import Server
from tts_worker.engines.espeak import BASE_WPM, EMOTIONS, VOICES

PHRASES = ["今天天气很好", "我们一起去公园散步吧", "请在下一个路口向右转", "会议将于下午三点开始",
           "感谢您的耐心等待", "列车即将到达终点站", "您的快递已经送达", "明天可能会有小雨",
           "请保管好您的随身物品", "欢迎使用语音合成服务"]


def texts(count: int, length: int) -> list[str]:
    """Deterministic Chinese paragraphs of about `length` characters."""
    out = []
    for i in range(count):
        parts, size, j = [], 0, i
        while size < length:
            phrase = PHRASES[j % len(PHRASES)] + ("，" if j % 3 else "。")
            parts.append(phrase)
            size += len(phrase)
            j += 7
        out.append("".join(parts))
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Client:
    """One kept-alive connection."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def tts(self, body: dict[str, object]) -> tuple[int, int]:
        self.conn.request("POST", "/tts", json.dumps(body).encode(),
                          {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        return response.status, len(data)


def timed_requests(port: int, bodies: Sequence[dict[str, object]],
                   concurrency: int) -> tuple[list[float], float]:
    """Latencies of every request, and the wall time, with `concurrency` clients."""
    shards = [bodies[i::concurrency] for i in range(concurrency)]

    def run(shard: Sequence[dict[str, object]]) -> list[float]:
        client = Client(port)
        latencies = []
        for body in shard:
            started = time.perf_counter()
            status, _ = client.tts(body)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise SystemExit(f"POST /tts answered {status}")
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(run, shards))
    return [x for r in results for x in r], time.perf_counter() - started


def start(workdir: Path, name: str, app: str, env: dict[str, str]) -> Server:
    server = Server.gunicorn(app, {"PROMETHEUS_MULTIPROC_DIR": str(workdir / name), **env},
                             workdir / f"{name}.log")
    server.wait_ready()
    return server


def overhead(workdir: Path, requests: int) -> list[tuple[str, str]]:
    server = start(workdir, "noop", GUNICORN_APP,
                   {"TTS_ENGINE": "test-silence", "TTS_CACHE_ENTRIES": "0",
                    "TTS_MAX_CONCURRENCY": "32", "TTS_THREADS": "16"})
    rows = []
    try:
        bodies = [{"text": f"第{i}句：你好，世界。", "voice": "alto", "emotion": "neutral",
                   "speed": 1.0, "format": "wav"} for i in range(requests)]
        timed_requests(server.port, bodies[:200], 1)  # warm up
        for concurrency in (1, 8):
            latencies, wall = timed_requests(server.port, bodies, concurrency)
            p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            verdict = "ok" if p50 <= 0.003 else "over the 3 ms goal"
            rows.append((f"overhead, no-op engine, concurrency {concurrency}",
                         f"p50 {p50 * 1000:.2f} ms   p99 {p99 * 1000:.2f} ms   "
                         f"{len(latencies) / wall:,.0f} req/s   ({verdict})"))
    finally:
        server.stop()
    return rows


def raw_espeak(espeak: str, corpus: Sequence[str], concurrency: int) -> float:
    """Characters per second of the CLI alone, invoked as the engine invokes it."""
    prosody = EMOTIONS["neutral"]
    args = [espeak, "-v", VOICES["mandarin-female"], "-s", str(BASE_WPM), "-p",
            str(prosody.pitch), "-a", str(prosody.amplitude), "-b", "1", "--stdin", "--stdout"]

    def one(text: str) -> None:
        # As `espeak-ng ... --stdout > file.wav` would: the output goes to a file.
        with tempfile.TemporaryFile() as out:
            subprocess.run(args, input=text.encode(), stdout=out, stderr=subprocess.DEVNULL,
                           check=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, corpus))
    return sum(len(t) for t in corpus) / (time.perf_counter() - started)


def espeak_rows(workdir: Path, corpus: Sequence[str], rounds: int) -> list[tuple[str, str]]:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return [("espeak throughput", "skipped: espeak-ng is not installed")]
    server = start(workdir, "espeak", "tts_worker:create_app()",
                   {"TTS_ENGINE": "espeak", "TTS_CACHE_ENTRIES": "0",
                    "TTS_MAX_CONCURRENCY": "8"})
    rows = []
    try:
        bodies = [{"text": t, "voice": "mandarin-female"} for t in corpus]
        timed_requests(server.port, bodies[:5], 1)  # warm up
        chars = sum(len(t) for t in corpus)
        for concurrency in (1, 4):
            raw, worker = [], []
            for _ in range(rounds):  # interleaved, so drift in machine load hits both
                raw.append(raw_espeak(espeak, corpus, concurrency))
                _, wall = timed_requests(server.port, bodies, concurrency)
                worker.append(chars / wall)
            raw_cps, worker_cps = statistics.median(raw), statistics.median(worker)
            ratio = worker_cps / raw_cps
            rows.append((f"espeak chars/s, concurrency {concurrency}",
                         f"worker {worker_cps:,.0f}   raw CLI {raw_cps:,.0f}   "
                         f"ratio {ratio:.2f}x   ({'ok' if ratio >= 0.9 else 'below 0.9x'})"))
    finally:
        server.stop()
    return rows


def cache_rows(workdir: Path, hits: int) -> list[tuple[str, str]]:
    if shutil.which("espeak-ng") is None:
        return [("cache hit", "skipped: espeak-ng is not installed")]
    server = start(workdir, "cache", "tts_worker:create_app()", {"TTS_ENGINE": "espeak"})
    try:
        body = {"text": texts(1, 100)[0], "voice": "mandarin-male"}
        miss, _ = timed_requests(server.port, [body], 1)
        latencies, _ = timed_requests(server.port, [body] * hits, 1)
    finally:
        server.stop()
    return [("cache hit, 100 characters, espeak",
             f"p50 {percentile(latencies, 0.5) * 1000:.2f} ms   "
             f"p99 {percentile(latencies, 0.99) * 1000:.2f} ms   "
             f"(the miss took {miss[0] * 1000:.1f} ms)")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests per overhead measurement")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per espeak comparison")
    parser.add_argument("--quick", action="store_true", help="a fast, rough run")
    args = parser.parse_args(argv)
    requests, rounds = (300, 1) if args.quick else (args.requests, args.rounds)
    corpus = texts(24, 120)
    sections: list[Callable[[Path], list[tuple[str, str]]]] = [
        lambda d: overhead(d, requests),
        lambda d: espeak_rows(d, corpus, rounds),
        lambda d: cache_rows(d, 500 if not args.quick else 100),
    ]
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        for section in sections:
            rows += section(Path(tmp))
    width = max(len(name) for name, _ in rows)
    print("worker benchmark (gunicorn gthread, 1 worker process, loopback HTTP)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
