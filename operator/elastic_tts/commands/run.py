"""`elastic-tts run`: the operator, on kopf. Its heavy imports happen when it runs, so
`explain` works on an install without the `operator` extra."""

from __future__ import annotations

import argparse
import re
import secrets
import time

from elastic_tts.commands.args import UsageError, examples
from elastic_tts.commands.malloc import tune_malloc

SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600}
LONGEST_WINDOW = 86400  # seconds; Prometheus keeps less than that of a rate's raw samples
PRIORITY_LIMIT = 2**62  # kopf stores priorities in the peering object as integers

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("plain", "full", "json")


def _promql_duration(text: str) -> bool:
    """A PromQL duration of whole seconds, minutes or hours, at most LONGEST_WINDOW."""
    return (re.fullmatch(r"[1-9][0-9]{0,5}[smh]", text, re.ASCII) is not None
            and int(text[:-1]) * SECONDS_PER_UNIT[text[-1]] <= LONGEST_WINDOW)


def rate_windows(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split(",")]
    if not (len(parts) == 2 and all(_promql_duration(p) for p in parts)):
        raise argparse.ArgumentTypeError(
            f"must be two PromQL durations of at most 24h like 1m,5m, got {text[:60]!r}")
    return parts[0], parts[1]


def burst_window(text: str) -> str | None:
    text = text.strip()
    if text == "off":
        return None
    if not _promql_duration(text):
        raise argparse.ArgumentTypeError(
            f"must be a PromQL duration of at most 24h like 30s, or off, got {text[:60]!r}")
    return text


def port_number(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", text, re.ASCII) or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"must be 1-65535, got {text[:20]!r}")
    return int(text)


def refresh_ticks(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,4}", text.strip(), re.ASCII) or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"must be a whole number of ticks 1-1000, got "
                                         f"{text[:20]!r}")
    return int(text)


def peering_priority(text: str) -> int:
    if text == "auto":
        return seniority_priority(time.time())
    if not re.fullmatch(r"[-+]?[0-9]{1,19}", text.strip(), re.ASCII) or not (
            -PRIORITY_LIMIT <= int(text) <= PRIORITY_LIMIT):
        raise argparse.ArgumentTypeError(
            f"must be 'auto' or an integer of magnitude at most 2^62, got {text[:40]!r}")
    return int(text)


def seniority_priority(started: float) -> int:
    """kopf pauses *every* operator that sees a peer of the same priority, so replicas of
    one Deployment (identical arguments) must not share one. The earlier start gets the
    higher priority (the random part only breaks ties): the replica that is acting keeps
    acting when a new one starts during a rollout, and the standby takes over when the
    active one leaves its peering or its record expires."""
    return -(int(started * 1000) * 1000 + secrets.randbelow(1000))


def add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "run",
        help="run the operator (kopf) against the current cluster",
        description="Run the elastic-tts operator: watch TTSServices, render their "
        "children and scale their pools. Credentials come from the in-cluster service "
        "account, else $KUBECONFIG or ~/.kube/config.",
        epilog=examples(
            "elastic-tts run                            # every namespace, with peering",
            "elastic-tts run -n tts -n 'team-*' --standalone",
            "elastic-tts run --metrics-port 9100 --rate-windows 2m,10m --verbose",
        ),
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
    parser.add_argument("--priority", type=peering_priority, default="auto", metavar="N",
                        help="peering priority; the highest acts, the others stand by "
                        "(default auto: the longest-running replica acts)")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", metavar="URL",
                        help="kopf liveness endpoint (default http://0.0.0.0:8080/healthz)")
    parser.add_argument("--metrics-port", type=port_number, default=8081,
                        help="port of the operator's own /metrics (default 8081)")
    parser.add_argument("--rate-windows", type=rate_windows, default=("1m", "5m"),
                        metavar="SHORT,LONG",
                        help="PromQL rate windows for the short and long load (default 1m,5m)")
    parser.add_argument("--burst-window", type=burst_window, default="30s", metavar="WINDOW",
                        help="PromQL window of the burst rate and the workers' backlog: two "
                        "scrape intervals (default 30s, for 15 s scrapes; off: no burst "
                        "headroom or panic)")
    parser.add_argument("--status-refresh-ticks", type=refresh_ticks, default=4, metavar="N",
                        help="a tick that changes only the load figures in status writes "
                        "it every N ticks; replicas, conditions, mode and window are written "
                        "as they change (default 4; 1: every tick)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                        help="least severe messages logged (default info)")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="full",
                        help="plain: the message; full: time, level, logger and message; "
                        "json: one JSON object per line (default full)")
    parser.add_argument("--verbose", action="store_true",
                        help="the same as --log-level debug")
    parser.set_defaults(func=run_operator)


def configure_logging(level: str, log_format: str) -> None:
    """kopf's own logging set-up (its formatters add the TTSService to each line), at the
    chosen level; kopf itself knows only debug, info and warning, so error is set after."""
    import logging

    import kopf

    kopf.configure(verbose=level == "debug", quiet=level in ("warning", "error"),
                   log_format=kopf.LogFormat[log_format.upper()])
    if level == "error":
        logging.getLogger().setLevel(logging.ERROR)


def run_operator(args: argparse.Namespace) -> int:
    # Before any thread exists: the allocator's arenas are made as threads first allocate.
    tune_malloc()
    # Imported here so that `explain` works without the operator extra installed.
    import kopf

    from elastic_tts.handlers import metrics, operator_memo  # registers the handlers
    from elastic_tts.reconcile.tick import TickSettings

    configure_logging("debug" if args.verbose else args.log_level, args.log_format)
    try:
        metrics.serve(args.metrics_port)
    except OSError as exc:
        raise UsageError(f"--metrics-port {args.metrics_port}: {exc.strerror}") from None

    kopf.run(
        memo=operator_memo(TickSettings(rate_windows=args.rate_windows,
                                        burst_window=args.burst_window,
                                        cluster_wide=not args.namespace,
                                        status_refresh_ticks=args.status_refresh_ticks)),
        clusterwide=not args.namespace, namespaces=args.namespace or (),
        # kopf pauses every watch until a *named* peering's CRD exists, even when
        # standalone; a standalone run must name none (as handlers.operator_task does).
        standalone=args.standalone, peering_name=None if args.standalone else args.peering,
        liveness_endpoint=args.liveness, priority=args.priority,
    )
    return 0
