"""The worker as clients see it (`make bench`), each figure measured side by side, in one run,
against the worker as it was before issue 12 (a `git archive` of BEFORE_REV) where that
comparison means something:

1. probes under hostile clients: how many slowloris, lying-body and silent connections the
   worker withstands with every probe answered within 1 s;
2. admission: the share of 429s and the latency of served requests when N clients send
   distinct 500-character texts at once, each client as the admission contract models it
   (a fresh connection per attempt, Retry-After honoured, X-Retry-Attempt sent, giving up
   after 60 s); and how many characters the worker counted as offered load against the
   characters the clients asked for;
3. time to first audio against the whole time, for a 500-character text with espeak;
4. recycling under load: requests dropped while processes are replaced;
5. RSS of the worker process over 10,000 varied requests, against the cache budget.

Everything runs on loopback with real gunicorn and real espeak-ng, on the same two shared
cores as the client, so absolute latencies are the machine's; the ratios are the point.
`--only probes,admission,...` runs a subset; `--quick` smaller counts for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import requests

from elastic_tts_dev.hostile import hostile, probe
from elastic_tts_dev.processes import stop_gracefully
from elastic_tts_dev.servers import Server, free_port

REPO = Path(__file__).resolve().parents[1]

BEFORE_REV = "b0821fb"  # main before issue 12
PHRASES = ["今天天气很好", "我们一起去公园散步吧", "请在下一个路口向右转", "会议将于下午三点开始",
           "感谢您的耐心等待", "列车即将到达终点站", "您的快递已经送达", "明天可能会有小雨",
           "请保管好您的随身物品", "欢迎使用语音合成服务"]


def text_of(i: int, length: int) -> str:
    """A distinct Chinese text of `length` characters (distinct, so the cache never helps)."""
    parts, j = [f"第{i}号。"], i
    while sum(map(len, parts)) < length:
        parts.append(PHRASES[j % len(PHRASES)] + ("，" if j % 3 else "。"))
        j += 7
    return "".join(parts)[:length]


@contextmanager
def worker(version: str, env: dict[str, str], tmp: Path) -> Iterator[Server]:
    """gunicorn serving the worker of `version` ("after" = this tree, "before" = BEFORE_REV,
    which has no probe listener: its probes are on the API port)."""
    port, probe_port = free_port(), free_port()
    while probe_port == port:
        probe_port = free_port()
    name = f"{version}-{uuid.uuid4().hex[:6]}"
    full = {"TTS_ENGINE": "espeak", "PROMETHEUS_MULTIPROC_DIR": str(tmp / name / "prom"),
            "PATH": os.environ["PATH"], "TTS_BIND": f"127.0.0.1:{port}",
            "TTS_PROBE_BIND": f"127.0.0.1:{probe_port}", **env}
    if version == "before":
        root = tmp / "before"
        if not root.exists():
            archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE_REV, "worker"],
                                     capture_output=True, check=True).stdout
            with tarfile.open(fileobj=BytesIO(archive)) as tar:
                tar.extractall(root, filter="data")
        full["PYTHONPATH"] = str(root / "worker")  # ahead of this tree's editable install
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:tts_worker.gunicorn_conf",
            "tts_worker:create_app()"]
    server = Server(argv, full, port, tmp / f"{name}.log",
                    probe_port if version == "after" else None)
    try:
        server.wait_ready(timeout=60)
        yield server
    finally:
        # Not the 30 s of a test's stop: an old worker held by slow clients would use it all.
        stop_gracefully(server.process, 5)


# --- 1. probes under hostile clients -----------------------------------------------------

def bench_probes(tmp: Path, quick: bool) -> None:
    print("\n1. Probes under hostile clients (every probe within 1 s?)")
    print("   connections of each kind held open; /healthz, /readyz and /metrics on fresh "
          "connections, 12 rounds (4 before); a cell is the worst probe, or answered/sent")
    counts = [8, 200] if quick else [8, 200, 500]
    print(f"   {'version':<8} {'kind':<11} " + " ".join(f"{n:>12}" for n in counts))
    for version in ("before", "after"):
        for kind in ("slowloris", "lying_body", "silent", "all three"):
            cells = []
            for n in counts:
                kinds = {k: n for k in ("slowloris", "lying_body", "silent")} \
                    if kind == "all three" else {kind: n}
                with worker(version, {}, tmp) as server, hostile("127.0.0.1", server.port,
                                                                  kinds):
                    time.sleep(1.0)
                    # Each probe that fails costs its 1 s timeout: fewer rounds for the old one.
                    rounds = 4 if quick or version == "before" else 12
                    times = probe(server.probe_url, rounds=rounds, interval=0.2)
                ok = len(times.failures) == 0 and times.worst() < 1.0
                answered = sum(len(v) for v in times.seconds.values())
                total = answered + len(times.failures)
                cells.append(f"{'ok' if ok else 'FAIL'} {times.worst() if answered else 0:4.2f}s"
                             if ok else f"FAIL {answered}/{total}")
            print(f"   {version:<8} {kind:<11} " + " ".join(f"{c:>12}" for c in cells))


# --- 2. admission ------------------------------------------------------------------------

@dataclass
class Outcome:
    served: bool
    latency: float
    answers: list[int]


def contract_client(url: str, text: str, give_up: float = 60.0) -> Outcome:
    """The client of the admission contract: a fresh connection per attempt, Retry-After
    honoured (at least 1 s), X-Retry-Attempt and the same X-Request-Id on retries."""
    request_id = uuid.uuid4().hex
    started = time.monotonic()
    answers = []
    attempt = 0
    while True:
        headers = {"X-Request-Id": request_id, "X-Retry-Attempt": str(attempt)}
        try:
            reply = requests.post(url + "/tts", json={"text": text}, headers=headers,
                                  timeout=max(1.0, give_up - (time.monotonic() - started)))
            answers.append(reply.status_code)
        except requests.RequestException:
            answers.append(0)
            reply = None
        if reply is not None and reply.status_code == 200:
            return Outcome(True, time.monotonic() - started, answers)
        wait = max(1.0, float(reply.headers.get("Retry-After", 1))) if reply is not None else 1
        if time.monotonic() - started + wait > give_up:
            return Outcome(False, time.monotonic() - started, answers)
        time.sleep(wait)
        attempt += 1


def metric(text: str, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name)


def bench_admission(tmp: Path, quick: bool) -> None:
    print("\n2. Admission: N clients send distinct 500-character texts at once (espeak)")
    print("   each client: fresh connection per attempt, waits Retry-After, gives up at 60 s")
    print(f"   {'version':<8} {'clients':>7} {'429 share':>9} {'served':>7} {'p50 s':>6} "
          f"{'p95 s':>6} {'max s':>6} {'chars counted/asked':>20}")
    env = {"TTS_CACHE_ENTRIES": "0", "TTS_MAX_CHARS": "500",
           # As the operator renders it for a pool of 4 slots at espeak's speed here.
           "TTS_MAX_CONCURRENCY": "4", "TTS_THROUGHPUT": "2000", "TTS_LATENCY_SLO_SECONDS": "5"}
    for clients in ([8, 32] if quick else [8, 16, 32]):
        for version in ("before", "after"):
            with worker(version, env, tmp) as server:
                texts = [text_of(i, 500) for i in range(clients)]
                with ThreadPoolExecutor(clients) as pool:
                    outcomes = list(pool.map(lambda t: contract_client(server.url, t), texts))
                scraped = requests.get(server.probe_url + "/metrics", timeout=5).text
            answers = [a for o in outcomes for a in o.answers]
            share = answers.count(429) / len(answers)
            latencies = sorted(o.latency for o in outcomes if o.served)
            p50 = statistics.median(latencies)
            p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
            counted = metric(scraped, "tts_characters_total")
            print(f"   {version:<8} {clients:>7} {share:>9.0%} "
                  f"{sum(o.served for o in outcomes):>3}/{clients:<3} {p50:>6.2f} {p95:>6.2f} "
                  f"{latencies[-1]:>6.2f} {counted:>9.0f}/{500 * clients:<9}")


# --- 3. time to first audio --------------------------------------------------------------

def bench_first_audio(tmp: Path, quick: bool) -> None:
    print("\n3. Time to first audio, a 500-character text with espeak (goal <= 25 % of the "
          "whole time)")
    text = text_of(1, 500)
    rounds = 3 if quick else 10
    with worker("after", {"TTS_CACHE_ENTRIES": "0"}, tmp) as server:
        wholes, firsts, streamed_ends = [], [], []
        for _ in range(rounds):
            started = time.perf_counter()
            requests.post(server.url + "/tts", json={"text": text}, timeout=60).raise_for_status()
            wholes.append(time.perf_counter() - started)
            started = time.perf_counter()
            with requests.post(server.url + "/tts", json={"text": text, "stream": True},
                               stream=True, timeout=60) as reply:
                chunks = reply.iter_content(chunk_size=None)
                next(chunks)
                firsts.append(time.perf_counter() - started)
                for _ in chunks:
                    pass
            streamed_ends.append(time.perf_counter() - started)
    whole, first, end = (statistics.median(v) for v in (wholes, firsts, streamed_ends))
    print(f"   median of {rounds}: whole (not streamed) {whole * 1000:.0f} ms; streamed: first "
          f"audio {first * 1000:.0f} ms, last {end * 1000:.0f} ms; first / whole = "
          f"{first / whole:.0%}")


# --- 4. recycling ------------------------------------------------------------------------

def bench_recycling(tmp: Path, quick: bool) -> None:
    print("\n4. Recycling under load: TTS_MAX_REQUESTS=100 (jitter 10), 8 clients")
    total = 600 if quick else 2000
    env = {"TTS_MAX_REQUESTS": "100", "TTS_MAX_REQUESTS_JITTER": "10", "TTS_CACHE_ENTRIES": "0"}
    with worker("after", env, tmp) as server:
        probes: list[int] = []
        stop = threading.Event()

        def prober() -> None:
            while not stop.is_set():
                try:
                    probes.append(requests.get(server.probe_url + "/readyz",
                                               timeout=1).status_code)
                except requests.RequestException:
                    probes.append(0)
                time.sleep(0.1)

        watcher = threading.Thread(target=prober)
        watcher.start()
        started = time.monotonic()

        def post(i: int) -> int:
            try:
                return requests.post(server.url + "/tts", json={"text": text_of(i, 40)},
                                     timeout=30).status_code
            except requests.RequestException:
                return 0

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(post, range(total)))
        elapsed = time.monotonic() - started
        time.sleep(1)
        stop.set()
        watcher.join()
        scraped = requests.get(server.probe_url + "/metrics", timeout=5).text
    recycles = metric(scraped, "tts_process_recycles_total")
    print(f"   {total} requests in {elapsed:.0f} s, {recycles:.0f} processes replaced: "
          f"{statuses.count(200)} answered 200, {total - statuses.count(200)} dropped or "
          f"refused; {len(probes)} probes, {probes.count(200)} ready")


# --- 5. RSS ------------------------------------------------------------------------------

def rss_of_children(master: int) -> int:
    total = 0
    for child in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def sample_rss(master: int, samples: list[int], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        samples.append(rss_of_children(master))


def bench_rss(tmp: Path, quick: bool) -> None:
    """The worker's own setting (what `serve` and the images set) over 10,000 requests; the
    two alternatives over 2,000, which is enough to show where they end up."""
    print("\n5. RSS of the worker process over varied requests (espeak, 4 clients, texts of "
          "20-300 characters, wav/mp3/pcm, a quarter streamed; cache budget 64 MiB)")
    configs = (
        ("glibc defaults", {}, 1000 if quick else 2000),
        ("MALLOC_ARENA_MAX=2 alone", {"MALLOC_ARENA_MAX": "2"}, 1000 if quick else 2000),
        # What serve and the images set: few arenas, and buffers over 128 KiB (audio)
        # always mapped and handed back when freed, not kept by glibc's adaptive threshold.
        ("the worker's (both)", {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "131072"},
         1000 if quick else 10000),
    )
    for label, env, total in configs:
        with worker("after", env, tmp) as server:
            samples = [rss_of_children(server.process.pid)]
            stop = threading.Event()
            thread = threading.Thread(target=sample_rss,
                                      args=(server.process.pid, samples, stop))
            thread.start()

            def post(i: int) -> None:
                body = {"text": text_of(i, 20 + (i * 37) % 280),
                        "format": ("wav", "mp3", "pcm")[i % 3], "stream": i % 4 == 0,
                        "speed": (1.0, 1.0, 1.5)[i % 3]}
                requests.post(server.url + "/tts", json=body, timeout=60)

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(post, range(total)))
            stop.set()
            thread.join()
            end = rss_of_children(server.process.pid)
        mib = 2 ** 20
        print(f"   {label:<26} {total:>6} requests: start {samples[0] / mib:4.0f} MiB, end "
              f"{end / mib:4.0f} MiB, peak {max(samples) / mib:4.0f} MiB")


BENCHES: dict[str, Callable[[Path, bool], None]] = {
    "probes": bench_probes, "admission": bench_admission, "ttfa": bench_first_audio,
    "recycling": bench_recycling, "rss": bench_rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as scratch:
        for name in args.only.split(","):
            BENCHES[name](Path(scratch), args.quick)
    print(json.dumps({"done": args.only.split(",")}))


if __name__ == "__main__":
    main()
