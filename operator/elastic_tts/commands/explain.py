"""`elastic-tts explain`: the decision and its reason for a steady load (a dry run)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime

from elastic_tts.commands.args import iso_time, non_negative_number
from elastic_tts.commands.specfile import load_spec_file
from elastic_tts.policy import Memory, Observation, PoolState, decide
from elastic_tts.policy.spec import METRICS


def add_explain(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "explain",
        help="show the decision and its reason for a steady load",
        description="Dry run: what elastic-tts would do for a steady load of N, starting "
        "from no replicas.",
    )
    parser.add_argument("--spec", required=True, help="TTSService YAML file")
    parser.add_argument(
        "--load", required=True, type=non_negative_number("--load"),
        help="steady load, in the metric's unit (characters/s or requests/s)",
    )
    parser.add_argument("--metric", choices=METRICS, help="override spec.scaling.metric")
    parser.add_argument("--at", type=iso_time, help="ISO-8601 time to decide at (default now)")
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
        print(json.dumps({
            "replicas": dict(decision.replicas),
            "mode": decision.mode,
            "cost_per_hour": decision.cost_per_hour,
            "reason": decision.reason,
        }, ensure_ascii=False))
    else:
        unit = "chars/s" if spec.scaling.metric == "characters" else "req/s"
        print(f"load      {args.load:g} {unit}")
        print(f"mode      {decision.mode}")
        for name, count in decision.replicas.items():
            print(f"  {name:<14} {count}")
        print(f"cost/h    ${decision.cost_per_hour:.4f}")
        print(f"reason    {decision.reason}")
    return 0
