"""The control loop: one kopf daemon per TTSService, ticking every intervalSeconds.

A daemon rather than a kopf timer because a timer's interval is fixed per decorator
while ``scaling.intervalSeconds`` differs per object and may change at any time; the
daemon reads it from the live body before every sleep. The tick itself is synchronous
(sync API clients) and runs in a worker thread; status goes to the status subresource
as a merge patch of what changed, which is what kopf's ``patch.status`` sends.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import kopf

from elastic_tts import operator_metrics as metrics
from elastic_tts.handlers import runtime
from elastic_tts.reconcile.kinds import GROUP, PLURAL, VERSION
from elastic_tts.reconcile.ports import ApiError, Conflict
from elastic_tts.reconcile.tick import ServiceRef, TickResult

DEFAULT_INTERVAL = 15.0
RETRY_AFTER_CONFLICT = 1.0


def interval_of(spec: Any) -> float:
    try:
        value = float((spec.get("scaling") or {}).get("intervalSeconds", DEFAULT_INTERVAL))
    except (AttributeError, TypeError, ValueError):
        return DEFAULT_INTERVAL
    return value if value >= 1 else DEFAULT_INTERVAL


def tick_once(body: kopf.Body, logger: kopf.Logger, now: float) -> TickResult:
    """Snapshot the live body, run one tick, write status. Runs in a worker thread."""
    meta = body.get("metadata", {})
    ref = ServiceRef(meta["name"], meta["namespace"], meta.get("generation"))
    spec = copy.deepcopy(dict(body.get("spec") or {}))
    status = copy.deepcopy(dict(body.get("status") or {}))
    ticker = runtime.ticker()
    result = ticker.tick(ref, spec, status, now, lambda objs: kopf.adopt(objs, owner=body))
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
                    logger: kopf.Logger, **_: Any) -> None:
    namespace = namespace or ""  # TTSService is namespaced; kopf types it optional
    while not stopped:
        started = time.monotonic()
        delay: float | None = None
        try:
            result = await asyncio.to_thread(tick_once, body, logger, time.time())
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
            delay = max(0.0, interval_of(body.get("spec") or {}) - (time.monotonic() - started))
        await stopped.wait(delay)
