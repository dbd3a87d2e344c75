"""`elastic-tts calibrate`: measure one worker and print its pool stanza.

A bounded ramp of closed-loop clients (1, 2, 3, 4, 6, 8, ... at once) against a worker's
POST /tts finds the characters per second it serves within the SLO and the concurrency
that reaches it; with --start-worker it also times the cold start, from the process's start
to its first Ready. That is `throughput`, `concurrency` and `coldStartSeconds` of a pool
running that model on that hardware, which no table can know.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from elastic_tts.commands.args import CommandError, UsageError, examples, number, whole
from elastic_tts.commands.output import json_text, yaml_text
from elastic_tts.commands.ramp import MIN_CHARS, Level, Worker, readiness, run_level, texts
from elastic_tts.policy.spec.model import HOUR, POOL_NAME

MAX_CONCURRENCY = 1024  # the spec's bound on a pool's concurrency
SATURATED = 1.05  # a level must beat the best so far by 5 % to count as a gain
KNEE = 0.95  # the knee: the fewest slots within 5 % of the best throughput
WARMUP_REQUESTS = 2


def add_calibrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "calibrate",
        help="measure a worker: throughput within the SLO, concurrency, cold start",
        description="Send a bounded load ramp to one worker (closed-loop clients, one "
        "concurrency level at a time) and print the pool stanza for spec.pools: the "
        "characters per second it serves within the SLO, the concurrency that reaches "
        "it, and (with --start-worker) the cold start from process start to Ready. Run it "
        "on the hardware the pool will use, against one worker and nothing else.",
        epilog=examples(
            "elastic-tts calibrate --url http://127.0.0.1:8080",
            "elastic-tts calibrate --url http://127.0.0.1:8090 --slo 2 --pool gpu \\",
            "    --start-worker -- elastic-tts-worker serve --port 8090 --engine modelscope",
            "elastic-tts calibrate --url http://10.0.0.7:8080 --max-seconds 120 --json",
        ),
    )
    parser.add_argument("--url", required=True, type=_url,
                        help="the worker's base URL (http://host:port)")
    parser.add_argument("--slo", type=number(maximum=HOUR, above=True), default=5.0,
                        metavar="SECONDS",
                        help="latencySLOSeconds: the SLO per 100 characters (default 5)")
    parser.add_argument("--attainment", type=number(maximum=1, above=True),
                        default=0.95, metavar="SHARE",
                        help="share of requests that must meet the SLO (default 0.95)")
    parser.add_argument("--chars", type=whole(minimum=MIN_CHARS, maximum=100_000),
                        default=100, metavar="N",
                        help="characters per request (default 100, the SLO's unit)")
    parser.add_argument("--max-concurrency", type=whole(minimum=1,
                                                        maximum=MAX_CONCURRENCY),
                        default=16, metavar="N", help="highest level of the ramp (default 16)")
    parser.add_argument("--step-seconds", type=number(minimum=1,
                                                      maximum=HOUR),
                        default=10.0, metavar="SECONDS", help="length of a level (default 10)")
    parser.add_argument("--max-seconds", type=number(minimum=1,
                                                     maximum=24 * HOUR),
                        default=300.0, metavar="SECONDS",
                        help="the whole ramp stops after this (default 300)")
    parser.add_argument("--max-requests", type=whole(minimum=1,
                                                     maximum=10_000_000),
                        default=5000, metavar="N",
                        help="the whole ramp sends at most this many (default 5000)")
    parser.add_argument("--request-timeout", type=number(maximum=HOUR,
                                                         above=True),
                        default=60.0, metavar="SECONDS",
                        help="a request unanswered after this is a miss (default 60)")
    parser.add_argument("--ready-timeout", type=number(maximum=24 * HOUR,
                                                       above=True),
                        default=600.0, metavar="SECONDS",
                        help="with --start-worker: how long it may take to be Ready "
                        "(default 600)")
    parser.add_argument("--pool", type=_pool, metavar="NAME",
                        help="the pool's name in the stanza (default: gpu or cpu, from "
                        "the worker's device)")
    parser.add_argument("--start-worker", action="store_true",
                        help="start the command after -- , time it to Ready, measure it, "
                        "stop it (it gets TTS_MAX_CONCURRENCY=--max-concurrency and "
                        "TTS_LATENCY_SLO_SECONDS=--slo unless they are set)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("worker_command", nargs="*", metavar="-- COMMAND",
                        help="with --start-worker: the worker's command line")
    parser.set_defaults(func=run_calibrate)


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"must be http://host:port or https://..., "
                                         f"got {text[:100]!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        raise argparse.ArgumentTypeError(f"has a bad port: {text[:100]!r}") from None
    if parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"is the worker's base URL, without ? or #, "
                                         f"got {text[:100]!r}")
    return text.rstrip("/")


def _pool(text: str) -> str:
    if not re.fullmatch(POOL_NAME, text) or len(text) > 40:
        raise argparse.ArgumentTypeError(f"must be a pool name (lowercase letters, "
                                         f"digits and '-'), got {text[:60]!r}")
    return text


@dataclass(frozen=True)
class Figures:
    """One level, reduced: what was sent, what was good, how fast."""

    concurrency: int
    sent: int
    ok: int
    refused: int
    failed: int
    within_slo: int
    seconds: float
    good_chars_per_second: float
    latency_p50: float | None
    latency_p95: float | None
    problem: str

    @property
    def attainment(self) -> float:
        return self.within_slo / self.sent if self.sent else 0.0


def figures(level: Level, slo: float) -> Figures:
    outcomes = level.outcomes
    good = [o for o in outcomes
            if o.status == 200 and o.latency <= slo * max(1.0, o.chars / 100.0)]
    answered = sorted(o.latency for o in outcomes if o.status == 200)
    refused = sum(o.status in (429, 503) for o in outcomes)
    failures = [o for o in outcomes if o.status not in (200, 429, 503)]
    return Figures(
        concurrency=level.concurrency, sent=len(outcomes),
        ok=len(answered), refused=refused, failed=len(failures), within_slo=len(good),
        seconds=level.seconds,
        good_chars_per_second=sum(o.chars for o in good) / level.seconds
        if level.seconds > 0 else 0.0,
        latency_p50=statistics.median(answered) if answered else None,
        latency_p95=answered[min(len(answered) - 1, math.ceil(0.95 * len(answered)) - 1)]
        if answered else None,
        problem=next((f"HTTP {o.status} {o.problem}".replace("HTTP 0 ", "")
                      for o in failures), ""),
    )


def levels_up_to(limit: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, 16, 24, ...: each about 1.5x the last, then the limit."""
    steps, value = [1, 2, 3], 4
    while value <= limit:
        steps += [value, value * 3 // 2]
        value *= 2
    return sorted({s for s in steps if s <= limit} | {limit})


def knee(results: Sequence[Figures], attainment: float) -> Figures | None:
    """The fewest slots within 5 % of the best throughput among levels that met the SLO.
    More slots than that only lengthen each request's service time."""
    passing = [f for f in results if f.sent and f.attainment >= attainment]
    if not passing:
        return None
    best = max(f.good_chars_per_second for f in passing)
    return min((f for f in passing if f.good_chars_per_second >= KNEE * best),
               key=lambda f: f.concurrency)


def run_calibrate(args: argparse.Namespace) -> int:
    if args.start_worker and not args.worker_command:
        raise UsageError("--start-worker needs the worker's command after --, e.g. "
                         "-- elastic-tts-worker serve --port 8090")
    if args.worker_command and not args.start_worker:
        raise UsageError(f"unexpected command {' '.join(args.worker_command)[:80]!r}: "
                         "pass --start-worker to have calibrate start it")
    cold_start = None
    worker = None
    log_dir = tempfile.TemporaryDirectory(prefix="elastic-tts-calibrate-")
    try:
        if args.start_worker:
            env = {"TTS_MAX_CONCURRENCY": str(args.max_concurrency),
                   "TTS_LATENCY_SLO_SECONDS": f"{args.slo:g}"}
            worker = Worker(args.worker_command,
                            {k: v for k, v in env.items() if k not in os.environ},
                            Path(log_dir.name) / "worker.log")
            cold_start = worker.wait_ready(args.url, args.ready_timeout)
        ready = readiness(args.url, args.request_timeout)
        results, stopped = ramp(args)
    finally:
        if worker is not None:
            worker.stop()
        log_dir.cleanup()
    chosen = knee(results, args.attainment)
    report = _report(args, ready, results, chosen, cold_start, stopped)
    print(json_text(report) if args.json else "\n".join(_text(args, report, results)))
    if chosen is None:
        raise CommandError(_no_level(args, results))
    return 0


def ramp(args: argparse.Namespace) -> tuple[list[Figures], str]:
    source = texts(args.chars)
    deadline = time.monotonic() + args.max_seconds
    budget = args.max_requests
    warmup = run_level(args.url, 1, args.step_seconds, WARMUP_REQUESTS, source,
                       args.request_timeout)
    if warmup.outcomes and all(o.status not in (200, 429, 503) for o in warmup.outcomes):
        first = figures(warmup, args.slo)
        raise CommandError(f"{args.url}/tts does not synthesise: {first.problem}")
    results: list[Figures] = []
    best, flat = 0.0, 0
    for concurrency in levels_up_to(args.max_concurrency):
        left = deadline - time.monotonic()
        if budget <= 0 or left < 1:
            return results, "--max-requests" if budget <= 0 else "--max-seconds"
        level = figures(run_level(args.url, concurrency, min(args.step_seconds, left), budget,
                                  source, args.request_timeout), args.slo)
        budget -= level.sent
        results.append(level)
        if level.sent == level.failed:
            raise CommandError(f"every request at concurrency {concurrency} failed: "
                               f"{level.problem}")
        if level.attainment < args.attainment:
            return results, "the SLO"
        flat = flat + 1 if level.good_chars_per_second < SATURATED * best else 0
        best = max(best, level.good_chars_per_second)
        if flat >= 2:
            return results, "saturation"
    return results, "--max-concurrency"


def _report(args: argparse.Namespace, ready: dict[str, Any], results: Sequence[Figures],
            chosen: Figures | None, cold_start: float | None, stopped: str) -> dict[str, Any]:
    device = str(ready.get("device") or "")
    accelerator = "gpu" if device.startswith("cuda") or device == "gpu" else "cpu"
    stanza: dict[str, Any] = {"accelerator": accelerator}
    if chosen is not None:
        stanza["throughput"] = round(chosen.good_chars_per_second, 1)
        stanza["concurrency"] = chosen.concurrency
    if cold_start is not None:
        stanza["coldStartSeconds"] = max(1, math.ceil(cold_start))
    return {
        "url": args.url, "engine": ready.get("engine"), "device": device or None,
        "chars_per_request": args.chars, "slo_seconds_per_100_chars": args.slo,
        "attainment_target": args.attainment, "stopped_by": stopped,
        "cold_start_seconds": round(cold_start, 2) if cold_start is not None else None,
        "levels": [{**f.__dict__, "attainment": round(f.attainment, 4)} for f in results],
        "pool": {args.pool or accelerator: stanza} if chosen is not None else None,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _text(args: argparse.Namespace, report: dict[str, Any], results: Sequence[Figures]
          ) -> list[str]:
    lines = [f"calibrated {report['url']} (engine {report['engine'] or '?'} on "
             f"{report['device'] or '?'}): {args.chars}-character requests, SLO {args.slo:g} s "
             f"per 100 characters for {args.attainment:.0%} of them"]
    header = ["CONC", "SENT", "OK", "REFUSED", "FAILED", "WITHIN SLO", "P50 S", "P95 S",
              "CHARS/S WITHIN SLO"]
    rows = [[str(f.concurrency), str(f.sent), str(f.ok), str(f.refused), str(f.failed),
             f"{f.attainment:.0%}", _seconds(f.latency_p50), _seconds(f.latency_p95),
             f"{f.good_chars_per_second:.1f}"] for f in results]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in [header, *rows]]
    lines.append(f"the ramp stopped at {report['stopped_by']}")
    if report["cold_start_seconds"] is not None:
        lines.append(f"cold start {report['cold_start_seconds']:g} s from process start to "
                     "Ready (add node start and image pull for a pool that scales from zero)")
    if report["pool"] is not None:
        lines += ["", f"# spec.pools stanza, measured by elastic-tts calibrate on "
                      f"{report['measured_at']}; add costPerHour, minReplicas, maxReplicas",
                  yaml_text(report["pool"]).rstrip()]
    return lines


def _no_level(args: argparse.Namespace, results: Sequence[Figures]) -> str:
    first = results[0] if results else None
    if first is None:
        return "no level ran: raise --max-seconds or --max-requests"
    p95 = _seconds(first.latency_p95)
    return (f"no concurrency met the SLO: one request at a time, {first.attainment:.0%} of "
            f"{args.chars}-character requests took at most {args.slo * max(1, args.chars / 100):g}"
            f" s (p95 {p95} s); this worker cannot serve that SLO (raise --slo, or use "
            "faster hardware)")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
