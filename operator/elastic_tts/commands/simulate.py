"""`elastic-tts simulate`: replay a trace through every policy and compare them.

The heavy imports (numpy, scipy, matplotlib, tqdm: the `simulator` extra) happen when the
command runs, so `explain` keeps working on an install without them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from elastic_tts.commands.args import (
    EXIT_USAGE,
    examples,
    non_negative_number,
    number,
    positive_number,
    whole,
)
from elastic_tts.commands.output import check_writable, json_text
from elastic_tts.simulator.verdict import (
    DEFAULT_SLO_TARGET,
    verdict,
    verdict_json,
    verdict_line,
)

DEFAULT_PLOT = "out/simulate.png"
DISPATCHES = ("route", "service")
WRITTEN_NAME = "my-tts"  # metadata.name of the TTSService --write-spec writes
# Bounds of the flags: beyond them a run is a mistake (or would exhaust time or memory;
# the trace's own limits, in simulator/trace.py, catch what is left).
MAX_SCALE = 1000.0
MAX_SPEEDUP = 10_000.0
MAX_SEED = 2**32 - 1
MAX_SEEDS = 32  # each seed is a whole run of every policy
MAX_WORKER_QUEUE = 4096  # the worker's own bound on TTS_MAX_QUEUE


def add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "simulate",
        help="replay a traffic trace and compare elastic-tts with the usual alternatives",
        description="Replay a trace (default: a built-in diurnal day) through elastic-tts, "
        "static GPU, HPA, KEDA (on GPU, on spot, with Karpenter), HPA on CPU, CPU-only, "
        "a work floor and a hindsight oracle at equal SLO on a simulated cluster; print "
        "cost, client-side SLO attainment and latency per policy, a verdict with the "
        "monthly cost, and draw a timeline.",
        epilog=examples(
            "elastic-tts simulate                       # the built-in day, default pools",
            "elastic-tts simulate --spec my-tts.yaml --trace traffic.csv",
            "elastic-tts simulate --trace traffic.csv --scale 3 --seeds 1,2,3 --json --no-plot",
            "elastic-tts simulate --spec my-tts.yaml --write-spec my-tts.simulated.yaml",
        ),
    )
    parser.add_argument("--trace", help="CSV: 'timestamp,characters' or the Azure LLM trace "
                        "format 'TIMESTAMP,ContextTokens,GeneratedTokens'")
    parser.add_argument("--spec", help="TTSService YAML to simulate (default: built-in pools)")
    parser.add_argument("--scale", type=positive_number("--scale", MAX_SCALE),
                        default=1.0, metavar="K",
                        help=f"multiply the request rate by K (at most {MAX_SCALE:g})")
    parser.add_argument("--speedup", type=positive_number("--speedup", MAX_SPEEDUP),
                        default=1.0, metavar="K",
                        help=f"replay K times faster (compress time; at most {MAX_SPEEDUP:g})")
    parser.add_argument("--seed", type=whole(maximum=MAX_SEED), default=None,
                        help="seed for spot events (default 1)")
    parser.add_argument("--seeds", type=_seeds, default=None, metavar="N,N,...",
                        help=f"run every seed (at most {MAX_SEEDS}) and report median and "
                        "worst")
    parser.add_argument("--dispatch", choices=DISPATCHES,
                        help="route: the HTTPRoute's weights, then a random endpoint of the "
                        "pool; service: a plain Service, a random endpoint per connection "
                        "(default: route when spec.routing.enabled, else service)")
    parser.add_argument("--spot-interruption-rate", type=non_negative_number(
        "--spot-interruption-rate", 60.0), default=0.05, metavar="PER_HOUR",
        help="Poisson interruptions per spot replica-hour (default 0.05, at most 60)")
    parser.add_argument("--spot-notice", type=non_negative_number("--spot-notice", 3600.0),
                        default=120.0, metavar="SECONDS",
                        help="interruption notice (default 120, AWS; 30 on GCP; 0 none; at "
                        "most 3600)")
    parser.add_argument("--spot-shortages-per-day", type=non_negative_number(
        "--spot-shortages-per-day", 1440.0), default=2.0, metavar="N",
        help="spot capacity shortages per day, Poisson (default 2, at most 1440)")
    parser.add_argument("--spot-shortage-minutes", type=positive_number(
        "--spot-shortage-minutes", 1440.0), default=20.0, metavar="MINUTES",
        help="mean length of a shortage (default 20, at most 1440)")
    parser.add_argument("--spot-waves-per-day", type=non_negative_number(
        "--spot-waves-per-day", 1440.0), default=1.0, metavar="N",
        help="interruption waves per day, Poisson; each brings a shortage (default 1, at "
        "most 1440)")
    parser.add_argument("--spot-wave-fraction", type=non_negative_number(
        "--spot-wave-fraction", 1.0), default=0.5, metavar="SHARE",
        help="share of spot replicas a wave takes (default 0.5)")
    parser.add_argument("--worker-max-queue", type=whole(minimum=1, maximum=MAX_WORKER_QUEUE),
                        default=32, metavar="N",
                        help=f"the workers' TTS_MAX_QUEUE (default 32, at most "
                        f"{MAX_WORKER_QUEUE})")
    parser.add_argument("--clients", choices=("retry-hint", "retry-after"),
                        default="retry-hint",
                        help="how refused clients wait: retry-hint honours the workers' "
                        "retry-after-ms as openai-python does (default); retry-after reads "
                        "only Retry-After, whole seconds (the sensitivity run)")
    parser.add_argument("--slo-target", type=number(maximum=1.0, above=True),
                        default=DEFAULT_SLO_TARGET, metavar="FRACTION",
                        help="the share of requests within the latency SLO a policy must "
                        f"reach to win the verdict (default {DEFAULT_SLO_TARGET:g})")
    parser.add_argument("--plot", default=DEFAULT_PLOT, metavar="PNG",
                        help=f"where to write the timeline (default {DEFAULT_PLOT})")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the timeline")
    parser.add_argument("--write-spec", metavar="YAML",
                        help="write the TTSService it simulated, ready for kubectl apply "
                        f"(metadata.name {WRITTEN_NAME})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run_simulate)


def _seeds(text: str) -> list[int]:
    parts = [p.strip() for p in text[:2000].split(",")]
    if len(parts) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SEEDS} seeds, got "
                                         f"{len(parts)}")
    parse = whole(maximum=MAX_SEED)
    seeds = [parse(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"repeats a seed: {text[:60]!r}")
    return seeds


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

    # Output paths first: a path that cannot be written is reported before the work.
    if args.write_spec:
        check_writable(Path(args.write_spec), "--write-spec")
    if not args.no_plot:
        check_writable(Path(args.plot), "--plot")
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
    report = to_json(comparisons, plot)
    # The user's verdict (the cheapest policy at --slo-target, a month of it) is read from
    # the first seed's run, as the table shows it first.
    found = verdict(report, args.slo_target)
    if args.write_spec:
        written = _write_spec(Path(args.write_spec), comparisons[0].spec, verdict_line(found))
        if written is not None:
            return written
    if args.json:
        print(json_text({**report, "verdict": verdict_json(found)}))
    else:
        print(render_table(comparisons, plot))
        print(verdict_line(found))
        if args.write_spec:
            print(f"spec      {args.write_spec} (kubectl apply -f {args.write_spec})")
    return 0


def _write_spec(path: Path, spec: Any, verdict_text: str) -> int | None:
    """The TTSService that was simulated, as YAML a user applies."""
    from elastic_tts.commands.output import yaml_text
    from elastic_tts.policy.spec.unparse import resource

    header = ("# The TTSService `elastic-tts simulate` ran; fields left out are at their "
              "defaults.\n"
              f"# {verdict_text.split(None, 1)[1]}\n"
              f"# Rename metadata.name before `kubectl apply -f {path.name}`.\n")
    try:
        path.write_text(header + yaml_text(resource(spec, WRITTEN_NAME)), encoding="utf-8")
    except OSError as exc:
        return _fail(f"--write-spec {path}: cannot write: {exc.strerror or exc}")
    return None


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
