"""`elastic-tts simulate`: replay a trace through every policy and compare them.

The heavy imports (numpy, scipy, matplotlib, tqdm: the `simulator` extra) happen when the
command runs, so `explain` keeps working on an install without them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elastic_tts.commands.args import EXIT_USAGE, non_negative_number, positive_number

DEFAULT_PLOT = "out/simulate.png"
DISPATCHES = ("route", "service")


def add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "simulate",
        help="replay a traffic trace and compare elastic-tts with the usual alternatives",
        description="Replay a trace (default: a built-in diurnal day) through elastic-tts, "
        "static GPU, HPA, KEDA (on GPU, on spot, with Karpenter), HPA on CPU, CPU-only, "
        "a work floor and a hindsight oracle at equal SLO on a simulated cluster; print "
        "cost, client-side SLO attainment and latency per policy, and draw a timeline.",
    )
    parser.add_argument("--trace", help="CSV: 'timestamp,characters' or the Azure LLM trace "
                        "format 'TIMESTAMP,ContextTokens,GeneratedTokens'")
    parser.add_argument("--spec", help="TTSService YAML to simulate (default: built-in pools)")
    parser.add_argument("--scale", type=positive_number("--scale"), default=1.0,
                        help="multiply the request rate by K")
    parser.add_argument("--speedup", type=positive_number("--speedup"), default=1.0,
                        help="replay K times faster (compress time)")
    parser.add_argument("--seed", type=_seed, default=None,
                        help="seed for spot events (default 1)")
    parser.add_argument("--seeds", type=_seeds, default=None, metavar="N,N,...",
                        help="run every seed and report median and worst")
    parser.add_argument("--dispatch", choices=DISPATCHES,
                        help="route: the HTTPRoute's weights, then a random endpoint of the "
                        "pool; service: a plain Service, a random endpoint per connection "
                        "(default: route when spec.routing.enabled, else service)")
    parser.add_argument("--spot-interruption-rate", type=non_negative_number(
        "--spot-interruption-rate"), default=0.05, metavar="PER_HOUR",
        help="Poisson interruptions per spot replica-hour (default 0.05)")
    parser.add_argument("--spot-notice", type=non_negative_number("--spot-notice"),
                        default=120.0, metavar="SECONDS",
                        help="interruption notice (default 120, AWS; 30 on GCP; 0 none)")
    parser.add_argument("--spot-shortages-per-day", type=non_negative_number(
        "--spot-shortages-per-day"), default=2.0, metavar="N",
        help="spot capacity shortages per day, Poisson (default 2)")
    parser.add_argument("--spot-shortage-minutes", type=positive_number(
        "--spot-shortage-minutes"), default=20.0, metavar="MINUTES",
        help="mean length of a shortage (default 20)")
    parser.add_argument("--spot-waves-per-day", type=non_negative_number(
        "--spot-waves-per-day"), default=1.0, metavar="N",
        help="interruption waves per day, Poisson; each brings a shortage (default 1)")
    parser.add_argument("--spot-wave-fraction", type=_fraction, default=0.5,
                        metavar="SHARE", help="share of spot replicas a wave takes "
                        "(default 0.5)")
    parser.add_argument("--worker-max-queue", type=_whole("--worker-max-queue"), default=32,
                        metavar="N", help="the workers' TTS_MAX_QUEUE (default 32)")
    parser.add_argument("--clients", choices=("retry-hint", "retry-after"),
                        default="retry-hint",
                        help="how refused clients wait: retry-hint honours the workers' "
                        "retry-after-ms as openai-python does (default); retry-after reads "
                        "only Retry-After, whole seconds (the sensitivity run)")
    parser.add_argument("--plot", default=DEFAULT_PLOT, metavar="PNG",
                        help=f"where to write the timeline (default {DEFAULT_PLOT})")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the timeline")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run_simulate)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed must not be negative, got {text!r}")
    return value


def _seeds(text: str) -> list[int]:
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"--seeds must be seeds separated by commas, got "
                                         f"{text!r}")
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds must be whole numbers, got {text!r}"
                                         ) from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"--seeds must not be negative, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds repeats a seed: {text!r}")
    return seeds


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--spot-wave-fraction must be between 0 and 1, "
                                         f"got {text!r}")
    return value


def _whole(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number of at least 1, "
                                             f"got {text!r}")
        return value
    return parse


def _fail(message: str) -> int:
    print(f"elastic-tts: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_simulate(args: argparse.Namespace) -> int:
    try:
        from elastic_tts.simulator.cluster import WorkerModel
        from elastic_tts.simulator.compare import SpotWeather, compare, runs_planned
        from elastic_tts.simulator.defaults import default_spec
        from elastic_tts.simulator.report import render_table, to_json
        from elastic_tts.simulator.trace import TraceError, builtin_day, scale, speedup
        from elastic_tts.simulator.tracefile import load_trace_file
    except ModuleNotFoundError as exc:
        if exc.name not in ("numpy", "scipy", "matplotlib", "tqdm"):
            raise
        return _fail(f"simulate needs {exc.name}: pip install 'elastic-tts[simulator]'")
    from elastic_tts.commands.specfile import load_spec_file

    spec = load_spec_file(args.spec) if args.spec else default_spec()
    try:
        if args.trace:
            trace = load_trace_file(args.trace, spec.schedule.timezone)
        else:
            trace = builtin_day(spec.schedule.timezone)
        trace = speedup(scale(trace, args.scale), args.speedup)
    except TraceError as exc:
        return _fail(str(exc))
    if args.seed is not None and args.seeds is not None:
        return _fail("give --seed or --seeds, not both")
    seeds = args.seeds or [args.seed if args.seed is not None else 1]
    weather = SpotWeather(args.spot_interruption_rate, args.spot_notice,
                          args.spot_shortages_per_day, args.spot_shortage_minutes,
                          args.spot_waves_per_day, args.spot_wave_fraction)
    worker = WorkerModel(max_queue=args.worker_max_queue,
                         retry_hint=args.clients == "retry-hint")
    bar = _progress_bar(enabled=not args.json and sys.stderr.isatty(),
                        total=int(trace.duration) * runs_planned(spec) * len(seeds))
    try:
        comparisons = [compare(trace, spec, dispatch=args.dispatch, seed=seed,
                               weather=weather, worker=worker,
                               progress=bar.update if bar else None) for seed in seeds]
    finally:
        if bar is not None:
            bar.close()
    plot = None if args.no_plot else _write_plot(comparisons[0], Path(args.plot))
    if isinstance(plot, int):
        return plot
    if args.json:
        print(json.dumps(to_json(comparisons, plot), ensure_ascii=False))
    else:
        print(render_table(comparisons, plot))
    return 0


def _write_plot(comparison: Any, path: Path) -> str | int:
    from elastic_tts.simulator.plot import render_png

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render_png(comparison))
    except OSError as exc:
        return _fail(f"--plot {path}: cannot write: {exc.strerror or exc}")
    return str(path)


def _progress_bar(enabled: bool, total: int) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="sim-s", unit_scale=True, file=sys.stderr, leave=False,
                desc="simulating")
