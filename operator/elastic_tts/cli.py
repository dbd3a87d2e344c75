"""The `elastic-tts` command: explain (dry run of one decision), later simulate and run.

Every user error ends in one line on stderr naming the flag or field, and exit code 2.
No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from elastic_tts.policy import Memory, Observation, PoolState, SpecError, decide
from elastic_tts.policy.spec import METRICS
from elastic_tts.simulator.command import add_simulate
from elastic_tts.specfile import load_spec_file

EXIT_USAGE = 2



class UsageError(Exception):
    """A bad flag value; the message names the flag."""


def non_negative_number(flag: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{flag} must be a finite number, got {text!r}")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{flag} must not be negative, got {text!r}")
        return value

    return parse


def iso_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--at must be an ISO-8601 time like 2026-11-23T09:30:00+08:00, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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


def rate_windows(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split(",")]
    valid = len(parts) == 2 and all(
        p[:-1].isdigit() and int(p[:-1]) > 0 and p[-1] in "smh" for p in parts
    )
    if not valid:
        raise argparse.ArgumentTypeError(
            f"--rate-windows must be two PromQL durations like 1m,5m, got {text!r}"
        )
    return parts[0], parts[1]


def port_number(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"--metrics-port must be 1-65535, got {text!r}")
    return int(text)


def add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "run",
        help="run the operator (kopf) against the current cluster",
        description="Run the elastic-tts operator: watch TTSServices, render their "
        "children and scale their pools. Credentials come from the in-cluster service "
        "account, else $KUBECONFIG or ~/.kube/config.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", metavar="NS",
                       help="watch this namespace (repeatable; glob patterns allowed)")
    scope.add_argument("--all-namespaces", "-A", action="store_true",
                       help="watch every namespace (the default)")
    parser.add_argument("--standalone", action="store_true",
                        help="no peering: do not coordinate with other operator replicas")
    parser.add_argument("--peering", default="elastic-tts", metavar="NAME",
                        help="peering object name for active/standby (default elastic-tts)")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", metavar="URL",
                        help="kopf liveness endpoint (default http://0.0.0.0:8080/healthz)")
    parser.add_argument("--metrics-port", type=port_number, default=8081,
                        help="port of the operator's own /metrics (default 8081)")
    parser.add_argument("--rate-windows", type=rate_windows, default=("1m", "5m"),
                        metavar="SHORT,LONG",
                        help="PromQL rate windows for the short and long load (default 1m,5m)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.set_defaults(func=run_operator)


def run_operator(args: argparse.Namespace) -> int:
    # Imported here so that `explain` works without the operator extra installed.
    import kopf

    from elastic_tts import operator_metrics
    from elastic_tts.handlers import runtime
    from elastic_tts.reconcile.tick import TickSettings

    kopf.configure(verbose=args.verbose)
    runtime.configure(TickSettings(rate_windows=args.rate_windows))
    try:
        operator_metrics.serve(args.metrics_port)
    except OSError as exc:
        raise UsageError(f"--metrics-port {args.metrics_port}: {exc.strerror}") from None
    import elastic_tts.handlers  # noqa: F401  (registers the handlers)

    kopf.run(
        clusterwide=not args.namespace, namespaces=args.namespace or (),
        # kopf pauses every watch until a *named* peering's CRD exists, even when
        # standalone; a standalone run must name none (as handlers.operator_task does).
        standalone=args.standalone, peering_name=None if args.standalone else args.peering,
        liveness_endpoint=args.liveness,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elastic-tts",
        description="Cost-aware autoscaling of TTS workers across GPU, spot and CPU pools.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Each subcommand adds its own parser and sets `func`; later issues append here.
    for add in (add_explain, add_simulate, add_run):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad flags
    try:
        return int(args.func(args))
    except SpecError as exc:
        for problem in exc.problems:
            print(f"elastic-tts: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"elastic-tts: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
