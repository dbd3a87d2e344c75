"""`elastic-tts simulate`: replay a trace through every policy and compare them.

The heavy imports (numpy, matplotlib, tqdm: the `simulator` extra) happen when the
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
DISPATCHES = ("capacity-weighted", "round-robin")
WRITTEN_NAME = "my-tts"  # metadata.name of the TTSService --write-spec writes
# Bounds of the flags: beyond them a run is a mistake (or would exhaust time or memory;
# the trace's own limits, in simulator/trace.py, catch what is left).
MAX_SCALE = 1000.0
MAX_SPEEDUP = 10_000.0
MAX_SEED = 2**32 - 1


def add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "simulate",
        help="replay a traffic trace and compare elastic-tts with the usual alternatives",
        description="Replay a trace (default: a built-in diurnal day) through elastic-tts, "
        "static GPU, HPA, KEDA, CPU-only and a hindsight oracle on a simulated cluster; "
        "print cost, SLO attainment and latency per policy, and draw a timeline.",
        epilog=examples(
            "elastic-tts simulate                       # the built-in day, default pools",
            "elastic-tts simulate --spec my-tts.yaml --trace traffic.csv",
            "elastic-tts simulate --trace traffic.csv --scale 3 --seed 7 --json --no-plot",
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
    parser.add_argument("--seed", type=whole(maximum=MAX_SEED), default=1,
                        help="seed for spot events")
    parser.add_argument("--dispatch", choices=DISPATCHES,
                        help="how requests spread over ready replicas (default: "
                        "capacity-weighted when spec.routing.enabled, else round-robin)")
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


def _fail(message: str) -> int:
    print(f"elastic-tts: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_simulate(args: argparse.Namespace) -> int:
    try:
        from elastic_tts.simulator.compare import SpotWeather, compare, runs_planned
        from elastic_tts.simulator.defaults import default_spec
        from elastic_tts.simulator.report import render_table, to_json
        from elastic_tts.simulator.trace import TraceError, builtin_day, scale, speedup
        from elastic_tts.simulator.tracefile import load_trace_file
    except ModuleNotFoundError as exc:
        if exc.name not in ("numpy", "matplotlib", "tqdm"):
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
    weather = SpotWeather(args.spot_interruption_rate, args.spot_notice,
                          args.spot_shortages_per_day, args.spot_shortage_minutes)
    bar = _progress_bar(enabled=not args.json and sys.stderr.isatty(),
                        total=int(trace.duration) * runs_planned(spec))
    try:
        comparison = compare(trace, spec, dispatch=args.dispatch, seed=args.seed,
                             weather=weather, progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    plot = None if args.no_plot else _write_plot(comparison, Path(args.plot))
    if isinstance(plot, int):
        return plot
    report = to_json(comparison, plot)
    found = verdict(report, args.slo_target)
    if args.write_spec:
        written = _write_spec(Path(args.write_spec), comparison.spec, verdict_line(found))
        if written is not None:
            return written
    if args.json:
        print(json_text({**report, "verdict": verdict_json(found)}))
    else:
        print(render_table(comparison, plot))
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
