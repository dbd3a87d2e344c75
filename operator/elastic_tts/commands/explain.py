"""`elastic-tts explain`: the decision and its reason for a steady load (a dry run)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from elastic_tts.commands.args import examples, iso_time, number
from elastic_tts.commands.output import json_text
from elastic_tts.commands.specfile import load_spec_file
from elastic_tts.policy import Memory, Observation, PoolState, decide
from elastic_tts.policy.spec import METRICS

# A billion characters (or requests) a second: more than any fleet serves, and small
# enough that every figure derived from it stays a finite number.
MAX_RATE = 1e9


def add_explain(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "explain",
        help="show the decision and its reason for a steady load",
        description="Dry run: what elastic-tts would do for a steady load of N, starting "
        "from no replicas. Nothing is contacted: the spec file and the load are all it "
        "reads.",
        epilog=examples(
            "elastic-tts explain --spec manifests/examples/full.yaml --load 410",
            "elastic-tts explain --spec my-tts.yaml --load 3 --metric requests",
            "elastic-tts explain --spec my-tts.yaml --load 410 "
            "--at 2026-11-23T03:00:00+08:00 --json",
        ),
    )
    parser.add_argument("--spec", required=True, help="TTSService YAML file")
    parser.add_argument(
        "--load", required=True, type=number(maximum=MAX_RATE),
        help=f"steady load, in the metric's unit (characters/s or requests/s; at most "
        f"{MAX_RATE:g})",
    )
    parser.add_argument("--metric", choices=METRICS, help="override spec.scaling.metric")
    parser.add_argument("--at", type=iso_time,
                        help="ISO-8601 time to decide at (default now)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    spec = load_spec_file(args.spec)
    if args.metric and args.metric != spec.scaling.metric:
        spec = replace(spec, scaling=replace(spec.scaling, metric=args.metric))
    now = args.at if args.at is not None else datetime.now(UTC).timestamp()
    observation = Observation(
        short_rate=args.load, long_rate=args.load,
        pools={name: PoolState() for name in spec.pools},
    )
    decision = decide(spec, observation, Memory(), now)
    if args.json:
        print(json_text({
            "replicas": dict(decision.replicas),
            "mode": decision.mode,
            "cost_per_hour": decision.cost_per_hour,
            "reason": decision.reason,
        }))
    else:
        unit = "chars/s" if spec.scaling.metric == "characters" else "req/s"
        print("\n".join(decision_lines(f"{args.load:g} {unit}", decision.mode,
                                       decision.replicas, decision.cost_per_hour,
                                       decision.reason)))
    return 0


def decision_lines(load: str, mode: str, replicas: Mapping[str, int], cost_per_hour: float,
                   reason: str) -> list[str]:
    """What explain prints, and status prints for a live service: one layout for both."""
    return [
        f"load      {load}",
        f"mode      {mode}",
        *(f"  {name:<14} {count}" for name, count in replicas.items()),
        f"cost/h    ${cost_per_hour:.4f}",
        f"reason    {reason}",
    ]
