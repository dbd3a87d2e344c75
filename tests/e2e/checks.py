"""What every scenario checks on a loop, bounded in time: steady state, convergence, and
the capacity a scale-down leaves behind."""

from __future__ import annotations

import itertools
import time
from typing import Any

from elastic_tts.reconcile.kinds import DEPLOYMENTS, POOL_LABEL
from tests.e2e.loop import Loop
from tests.operator.cluster import wait_for


def deployment_replicas(loop: Loop) -> dict[str, int]:
    return {d["metadata"]["labels"][POOL_LABEL]: int(d["spec"].get("replicas") or 0)
            for d in loop.cluster.list(DEPLOYMENTS, loop.namespace)}


def converged(loop: Loop) -> dict[str, int] | None:
    """The decision, the Deployments and the Ready workers all agree (and stay so for one
    more tick)."""
    decided = (loop.status().get("lastDecision") or {}).get("replicas") or {}
    ready = loop.ready_counts()
    same = {p: n for p, n in decided.items()} == deployment_replicas(loop) and all(
        ready.get(p, 0) == n for p, n in decided.items())
    return dict(decided) if same and decided else None


def wait_converged(loop: Loop, what: str, timeout: float = 60.0) -> dict[str, int]:
    wait_for(what, lambda: converged(loop), timeout)
    time.sleep(2.5)  # one more tick: a state that holds, not a moment passing through
    return wait_for(what, lambda: converged(loop), timeout)


def wait_steady_under(loop: Loop, offered: float, timeout: float = 90.0) -> dict[str, int]:
    """The operator sees the offered load (chars/s) and the loop has converged on it."""
    def seeing() -> bool:
        load = (loop.status().get("load") or {}).get("charactersPerSecond") or 0.0
        return float(load) >= 0.85 * offered
    wait_for(f"the operator to see {offered:g} chars/s", seeing, timeout)
    return wait_converged(loop, f"a steady loop under {offered:g} chars/s", timeout)


def condition(loop: Loop, kind: str, name: str | None = None) -> dict[str, Any] | None:
    for cond in loop.status(name).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def condition_is(loop: Loop, kind: str, value: str,
                 name: str | None = None) -> dict[str, Any] | None:
    cond = condition(loop, kind, name)
    return cond if cond is not None and cond.get("status") == value else None


def capacity_drops_below_demand(loop: Loop) -> list[str]:
    """Every moment the Ready capacity went down (a worker drained away) while the
    demand the operator last observed needed more than what was left. Capacity that an
    injected spot interruption took is the fault itself, and not counted."""
    problems = []
    ticks = loop.recorder.ticks
    samples = loop.observer.capacity
    for before, after in itertools.pairwise(samples):
        left, had = loop.ready_capacity(after.ready), loop.ready_capacity(before.ready)
        if left >= had or after.cause == "interrupted":  # the fault's loss, not a decision
            continue
        seen = [t for t in ticks if t.at <= after.at]
        if not seen:
            continue
        demand = seen[-1].demand
        if left + 1e-6 < min(demand, had):
            problems.append(f"at {after.at:.1f}: capacity {had:g} -> {left:g} chars/s, "
                            f"demand {demand:.1f}")
    return problems
