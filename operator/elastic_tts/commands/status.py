"""`elastic-tts status [NAME]`: live TTSServices as the operator last left them.

For one service: what `explain` prints (load, mode, replicas per pool, cost, reason), then
the pools' readiness, the conditions and the recent decisions (the operator's Events).
Without a name: one line per service. It reads through the kubeconfig as kubectl does,
and only reads. The pykube client is imported when the command runs, so `explain` works
on an install without the `operator` extra.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from elastic_tts.commands.args import CommandError, examples, number, whole
from elastic_tts.commands.explain import decision_lines
from elastic_tts.commands.output import json_text, yaml_text
from elastic_tts.reconcile.kinds import TTSSERVICES

OUTPUTS = ("text", "wide", "json", "yaml")
EVENT_KIND = ("v1", "events", "Event")
# A Kubernetes object name (RFC 1123 subdomain) and a namespace (RFC 1123 label).
NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def add_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "status",
        help="show live TTSServices: decision, pools, conditions and recent decisions",
        description="Read TTSServices from the cluster (through the kubeconfig, as kubectl "
        "does) and show what the operator last decided and why: the load, the mode, the "
        "replicas per pool, the cost, the reason, each pool's readiness, the conditions and "
        "the recent scaling Events. Without NAME, one line per TTSService.",
        epilog=examples(
            "elastic-tts status                        # every TTSService in the namespace",
            "elastic-tts status -A -o wide             # in every namespace, with reasons",
            "elastic-tts status -n tts my-tts          # one service in detail",
            "elastic-tts status my-tts -o json --context prod",
        ),
    )
    parser.add_argument("name", nargs="?", metavar="NAME", type=_name,
                        help="a TTSService (default: all in the namespace)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", type=_namespace,
                       help="the namespace (default: the context's, else default)")
    scope.add_argument("-A", "--all-namespaces", action="store_true",
                       help="list TTSServices in every namespace")
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context to use")
    parser.add_argument("-o", "--output", choices=OUTPUTS, default="text",
                        help="text (default), wide (more columns), json or yaml")
    parser.add_argument("--events", type=whole(maximum=100), default=5,
                        metavar="N", help="recent Events to show per service (default 5)")
    parser.add_argument("--request-timeout", type=number(maximum=300,
                                                         above=True),
                        default=10.0, metavar="SECONDS",
                        help="how long one API request may take (default 10)")
    parser.set_defaults(func=run_status)


def _name(text: str) -> str:
    if not NAME.match(text):
        raise argparse.ArgumentTypeError(f"must be a Kubernetes object name (lowercase "
                                         f"letters, digits, '-' and '.'), got {text[:80]!r}")
    return text


def _namespace(text: str) -> str:
    if not NAMESPACE.match(text):
        raise argparse.ArgumentTypeError(f"must be a namespace name (lowercase "
                                         f"letters, digits and '-'), got {text[:80]!r}")
    return text


def run_status(args: argparse.Namespace) -> int:
    if args.name and args.all_namespaces:
        raise CommandError("a NAME needs one namespace: use -n, not -A")
    try:
        from elastic_tts.adapters.kubeconfig import KubeconfigError, connect
    except ModuleNotFoundError as exc:
        raise CommandError(f"status needs {exc.name}: pip install 'elastic-tts[operator]'"
                           ) from None
    from elastic_tts.reconcile.ports import ApiError, Kind

    try:
        cluster, default_namespace = connect(args.kubeconfig, args.context,
                                             timeout=args.request_timeout)
    except KubeconfigError as exc:
        raise CommandError(str(exc)) from None
    namespace = None if args.all_namespaces else args.namespace or default_namespace
    events_kind = Kind(*EVENT_KIND)
    try:
        if args.name:
            obj = cluster.get(TTSSERVICES, namespace, args.name)
            if obj is None:
                raise CommandError(f'TTSService "{args.name}" not found in namespace '
                                   f'"{namespace}"')
            objects = [obj]
        else:
            objects = sorted(cluster.list(TTSSERVICES, namespace), key=_key)
        events = {}
        if args.name or args.output in ("json", "yaml"):
            for obj in objects:
                meta = obj.get("metadata") or {}
                events[_key(obj)] = _recent(cluster.list(
                    events_kind, meta.get("namespace"),
                    fields={"involvedObject.kind": TTSSERVICES.kind,
                            "involvedObject.name": str(meta.get("name"))}), args.events)
    except ApiError as exc:
        raise CommandError(_api_problem(exc, namespace)) from None
    except (OSError, ValueError) as exc:  # a server that speaks no Kubernetes JSON
        raise CommandError(f"the API server's answer cannot be read: "
                           f"{str(exc).splitlines()[0][:200]}") from None
    now = datetime.now(UTC)
    summaries = [summary(obj, events.get(_key(obj), []), now) for obj in objects]
    if args.output in ("json", "yaml"):
        document: Any = summaries[0] if args.name else {"items": summaries}
        print(json_text(document) if args.output == "json" else yaml_text(document), end="")
        if args.output == "json":
            print()
    elif args.name:
        print("\n".join(detail_lines(summaries[0], wide=args.output == "wide")))
    elif not summaries:
        where = "any namespace" if namespace is None else f"namespace {namespace!r}"
        print(f"No TTSServices found in {where}.")
    else:
        print("\n".join(table_lines(summaries, all_namespaces=namespace is None,
                                    wide=args.output == "wide")))
    return 0


def _api_problem(exc: Exception, namespace: str | None) -> str:
    status = getattr(exc, "status", None)
    if status == 404:
        return (f"this cluster does not serve {TTSSERVICES.api_version} "
                f"{TTSSERVICES.plural}: install the CRD (helm install elastic-tts "
                "charts/elastic-tts)")
    if status in (401, 403):
        where = "in every namespace" if namespace is None else f"in namespace {namespace!r}"
        return f"the API server refused to show TTSServices {where}: {exc}"
    if status == 0:
        return f"cannot reach the API server: {exc}"
    return str(exc)


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _recent(items: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    def when(event: Mapping[str, Any]) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime")
                   or (event.get("metadata") or {}).get("creationTimestamp") or "")

    ordered = sorted(items, key=when)
    return [{"time": when(e), "type": e.get("type"), "reason": e.get("reason"),
             "count": e.get("count") or 1, "message": e.get("message") or ""}
            for e in ordered[len(ordered) - count:]] if count else []


def summary(obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]], now: datetime
            ) -> dict[str, Any]:
    """The fields status shows, from the object the operator wrote. Keys as explain --json
    names them where explain has them."""
    meta, spec, status = (_mapping(obj, key) for key in ("metadata", "spec", "status"))
    scaling = _mapping(spec, "scaling")
    last = _mapping(status, "lastDecision")
    pools = _mapping(status, "pools")
    replicas = _mapping(last, "replicas") or {
        name: entry.get("desired") for name, entry in pools.items()
        if isinstance(entry, Mapping)}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "generation": meta.get("generation"),
        "observed_generation": status.get("observedGeneration"),
        "metric": scaling.get("metric") or "characters",
        "load": dict(_mapping(status, "load")),
        "mode": status.get("mode"),
        "window": status.get("window"),
        "replicas": dict(replicas),
        "cost_per_hour": status.get("costPerHour"),
        "reason": last.get("reason"),
        "decided_at": last.get("time"),
        "decided_ago_seconds": _age_seconds(last.get("time"), now),
        "pools": {name: dict(entry) for name, entry in pools.items()
                  if isinstance(entry, Mapping)},
        "route_weights": dict(_mapping(status, "routeWeights")),
        "conditions": [dict(c) for c in _items(status.get("conditions"))],
        "events": [dict(e) for e in events],
    }


def _mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A member that should be an object; anything else (absent, hand-edited) is empty."""
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def detail_lines(s: Mapping[str, Any], wide: bool = False) -> list[str]:
    lines = [f"name      {s['name']}  (namespace {s['namespace']})"]
    if s["mode"] is None:
        lines.append("status    none yet: the operator has not acted on this TTSService "
                     "(is it running? kubectl get pods -A -l app.kubernetes.io/name="
                     "elastic-tts)")
    else:
        lines += decision_lines(_load_text(s), str(s["mode"]), s["replicas"],
                                float(s["cost_per_hour"] or 0.0), str(s["reason"] or "-"))
        lines.append(f"decided   {s['decided_at'] or '-'}"
                     f"{_ago(s['decided_ago_seconds'])}"
                     f"{'  window ' + s['window'] if s['window'] else ''}")
    if s["generation"] is not None and s["observed_generation"] not in (None, s["generation"]):
        lines.append(f"note      the spec changed since (generation {s['generation']}, the "
                     f"operator last acted on {s['observed_generation']})")
    if s["pools"]:
        columns = ["desired", "current", "ready", "pending"]
        if wide:
            columns += ["pendingSeconds", "charactersPerSecond", "requestsPerSecond",
                        "spotBackoffUntil"]
        rows = [[name, *(_cell(entry.get(c)) for c in columns)]
                for name, entry in s["pools"].items()]
        if wide and s["route_weights"]:
            columns.append("routeWeight")
            for row in rows:
                row.append(_cell(s["route_weights"].get(row[0])))
        lines.append("pools")
        lines += _table(["POOL", *(c.upper() for c in columns)], rows, indent="  ")
    if s["conditions"]:
        lines.append("conditions")
        condition_rows = [[str(c.get("type")), str(c.get("status")), str(c.get("reason") or ""),
                     _ago_short(c.get("lastTransitionTime")), str(c.get("message") or "")]
                    for c in s["conditions"]]
        lines += _table(["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], condition_rows,
                        indent="  ")
    lines.append("recent decisions (Events, oldest first)" if s["events"]
                 else "recent decisions: no Events (they expire after an hour by default)")
    lines += _table(["LAST SEEN", "TYPE", "REASON", "COUNT", "MESSAGE"],
                    [[_ago_short(e["time"]), str(e["type"]), str(e["reason"]),
                      str(e["count"]), str(e["message"])] for e in s["events"]],
                    indent="  ") if s["events"] else []
    return lines


def table_lines(summaries: Sequence[Mapping[str, Any]], all_namespaces: bool, wide: bool
                ) -> list[str]:
    header = ["NAME", "MODE", "REPLICAS", "COST/H", "READY", "DECIDED"]
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    if wide:
        header += ["LOAD", "REASON"]
    rows = []
    for s in summaries:
        ready = next((str(c.get("status")) for c in s["conditions"] if c.get("type") == "Ready"),
                     "-")
        cost = s["cost_per_hour"]
        row = [str(s["name"]), str(s["mode"] or "-"),
               ",".join(f"{pool}={count}" for pool, count in s["replicas"].items()) or "-",
               f"${cost:.4f}" if isinstance(cost, int | float) else "-", ready,
               _ago_short(s["decided_at"])]
        if all_namespaces:
            row.insert(0, str(s["namespace"]))
        if wide:
            row += [_load_text(s), str(s["reason"] or "-")]
        rows.append(row)
    return _table(header, rows)


def _load_text(s: Mapping[str, Any]) -> str:
    load = s["load"]
    chars, reqs, demand = (load.get("charactersPerSecond"), load.get("requestsPerSecond"),
                           load.get("demand"))
    if chars is None and reqs is None:
        return "unknown (no metrics)"
    unit = "req/s" if s["metric"] == "requests" else "chars/s"
    main, other = (reqs, chars) if s["metric"] == "requests" else (chars, reqs)
    other_unit = "chars/s" if unit == "req/s" else "req/s"
    text = f"{_num(main)} {unit} ({_num(other)} {other_unit})"
    return text + (f", demand {_num(demand)} {unit}" if demand is not None else "")


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "-"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return [indent + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths,
                                                                           strict=True)).rstrip()
            for row in [header, *rows]]


def _age_seconds(text: object, now: datetime) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (now - moment).total_seconds())


def _ago(seconds: float | None) -> str:
    return "" if seconds is None else f" ({_duration(seconds)} ago)"


def _ago_short(text: object) -> str:
    seconds = _age_seconds(text, datetime.now(UTC))
    return "-" if seconds is None else _duration(seconds)


def _duration(seconds: float) -> str:
    """kubectl's short ages: 45s, 3m12s, 5h, 2d."""
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 600:
        return f"{s // 60}m{s % 60}s"
    if s < 3 * 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86400}d"
