"""The control loop: one kopf daemon per TTSService, ticking every intervalSeconds.

A daemon rather than a kopf timer because a timer's interval is fixed per decorator
while ``scaling.intervalSeconds`` differs per object and may change at any time; each
tick reports the interval of the spec it parsed. The tick itself is synchronous (sync
API clients) and runs in a worker thread; status goes to the status subresource as a
merge patch of what changed, which is what kopf's ``patch.status`` sends, on the ticks
where it is due (a tick that changes only load figures writes every few ticks; see
reconcile/status.py).

The service's memo (kopf's, per object) keeps the engine memory of its last tick, which
the next tick starts from, and what the next tick compares of the status it last wrote
(`reconcile.status.compared`), for when the body kopf hands over has not caught up yet.
"""

from __future__ import annotations

import asyncio
import copy
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import kopf

from elastic_tts.handlers import metrics
from elastic_tts.policy import Memory, Scaling
from elastic_tts.reconcile.kinds import GROUP, PLURAL, VERSION
from elastic_tts.reconcile.ports import ApiError, Conflict
from elastic_tts.reconcile.status import compared
from elastic_tts.reconcile.tick import ServiceRef, Ticker, TickResult

RETRY_AFTER_CONFLICT = 1.0
# Until a tick has parsed the spec (or while it is refused), tick at the model's default.
DEFAULT_INTERVAL = Scaling().interval_seconds
# A tick mostly waits on the API server and Prometheus. asyncio's default executor has
# min(32, cores + 4) threads; with 500 services on a real API server that queue alone
# held ticks 30 s, twice their interval (bench/bench_operator.py). With 16 threads, 500
# services left each tick 0.48 s of a thread per interval, about what its requests take
# when the control plane is busy, and one measured interval decided only 94 % of them;
# with 32, the p99 of a tick in the load shift fell from 5 s to 2.5 s (one run each).
# lifecycle sizes the adapters' HTTP connection pools from this.
TICK_THREADS = 32
_TICKS = ThreadPoolExecutor(max_workers=TICK_THREADS, thread_name_prefix="tick")


def tick_once(ticker: Ticker, body: kopf.Body, memory: Memory | None,
              now: float, written: dict[str, Any] | None = None) -> TickResult:
    """Run one tick on a snapshot of the body and write status. Runs in a worker thread.

    kopf replaces a live body's contents wholesale on each event, never in place, so the
    top-level copy the daemon takes (see below) is consistent; the parser copies what it
    keeps of the spec, and only status, which the tick compares with, is copied deep."""
    meta = body.get("metadata", {})
    ref = ServiceRef(meta["name"], meta["namespace"], meta.get("generation"))
    status = copy.deepcopy(dict(body.get("status") or {}))
    result = ticker.tick(ref, body.get("spec") or {}, status, now,
                         lambda objs: kopf.adopt(objs, owner=body), memory, written)
    if result.status_due:
        ticker.write_status(ref, status, result.status)
    return result


def record(namespace: str, name: str, result: TickResult) -> None:
    if result.metrics_error:
        metrics.PROMETHEUS_FAILURES.labels(namespace, name).inc()
    metrics.record_conditions(namespace, name, result.status.get("conditions"))
    for event in result.events:
        metrics.record_event(namespace, name, event.reason, event.type)
    decision = result.decision
    if decision is None:
        return
    metrics.record_decision(namespace, name, decision)
    for change in result.changes:
        direction = "up" if change.after > change.before else "down"
        metrics.SCALE_CHANGES.labels(namespace, name, change.pool, direction).inc()


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def autoscale(body: kopf.Body, name: str, namespace: str | None, stopped: kopf.DaemonStopped,
                    memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    namespace = namespace or ""  # TTSService is namespaced; kopf types it optional
    interval = DEFAULT_INTERVAL
    while not stopped:
        started = time.monotonic()
        delay: float | None = None
        try:
            # In the loop's thread, so no event lands midway.
            snapshot = kopf.Body(cast(kopf.RawBody, dict(body)))
            result = await asyncio.get_running_loop().run_in_executor(
                _TICKS, tick_once, memo.ticker, snapshot, memo.get("engine_memory"),
                time.time(), memo.get("written_status"))
        except Conflict as exc:
            metrics.ERRORS.labels(namespace, name, "Conflict").inc()
            logger.info("conflict, retrying: %s", exc)
            delay = RETRY_AFTER_CONFLICT
        except ApiError as exc:
            metrics.ERRORS.labels(namespace, name, "ApiError").inc()
            logger.warning("tick failed, retrying next interval: %s", exc)
        except Exception:  # a bug must not kill the loop for this service
            metrics.ERRORS.labels(namespace, name, "Unexpected").inc()
            logger.exception("tick failed unexpectedly")
        else:
            if result.decision is not None:
                memo.engine_memory = result.decision.memory
            if result.status_due:
                # The body may lag it (tick docs); what a later tick compares is enough.
                memo.written_status = compared(result.status)
            interval = (result.spec.scaling.interval_seconds if result.spec is not None
                        else DEFAULT_INTERVAL)
            record(namespace, name, result)
            for event in result.events:
                kopf.event(body, type=event.type, reason=event.reason, message=event.message)
            if result.changes:
                logger.info("%s", result.decision.reason if result.decision else "")
            if result.metrics_error:
                logger.warning("metrics unavailable, replicas held: %s", result.metrics_error)
        finally:
            metrics.RECONCILE_SECONDS.labels("tick").observe(time.monotonic() - started)
        if delay is None:
            # Sharp cadence: a slow tick does not push every later tick back.
            delay = max(0.0, interval - (time.monotonic() - started))
        await stopped.wait(delay)
