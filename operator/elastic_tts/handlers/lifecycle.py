"""kopf handlers for the TTSService lifecycle: startup, login, create/update/resume.

Create, update and resume create the children and converge their shape; what follows
the load (replicas, route weights) is the control loop's alone. Children carry
ownerReferences (kopf.adopt), so deleting the TTSService deletes them through the
garbage collector and no finalizer is needed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.adapters.prometheus import PrometheusLoadSource
from elastic_tts.handlers import metrics
from elastic_tts.handlers.autoscaler import TICK_THREADS
from elastic_tts.policy import SpecError, parse_spec
from elastic_tts.reconcile import reasons
from elastic_tts.reconcile.children import converge_children
from elastic_tts.reconcile.kinds import GROUP, PLURAL, VERSION
from elastic_tts.reconcile.ports import ApiError, Conflict
from elastic_tts.reconcile.tick import Ticker, TickSettings

KOPF_PREFIX = f"kopf.{GROUP}"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Events carry our transitions and kopf's handler failures; per-tick warnings
    # (metrics still missing) stay in the logs instead of flooding Events.
    settings.posting.level = logging.ERROR
    # Keep kopf's bookkeeping in annotations under our own prefix, and status clean.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration")
    settings.persistence.finalizer = f"{GROUP}/kopf-finalizer"
    # The clients every service shares. Credentials: the in-cluster service account, else
    # kubeconfig, the same source kopf logs in with (below).
    tick_settings = memo.get("tick_settings") or TickSettings()
    memo.ticker = Ticker(PykubeCluster.from_env(concurrency=TICK_THREADS),
                         PrometheusLoadSource(concurrency=TICK_THREADS), tick_settings)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_via_pykube(**kwargs)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def reconcile_children(body: kopf.Body, name: str, namespace: str | None, spec: kopf.Spec,
                       memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Create and converge the children. Status (the InvalidSpec condition included) is
    written by the control loop alone: a second writer here would race it, and kopf
    re-applies a deferred patch.status later, putting back conditions the loop has
    since changed. Nothing is returned: kopf would store a handler's result under
    status.<handler>, which the CRD's structural schema prunes (and kopf then warns of an
    inconsistent patch on every create and update)."""
    namespace = namespace or ""  # TTSService is namespaced; kopf types it optional
    started = time.perf_counter()
    try:
        parsed = parse_spec(spec, name=name)
    except SpecError as exc:
        message = "; ".join(exc.problems)
        kopf.event(body, type="Warning", reason=reasons.INVALID_SPEC_EVENT, message=message)
        metrics.ERRORS.labels(namespace, name, "InvalidSpec").inc()
        metrics.record_event(namespace, name, reasons.INVALID_SPEC_EVENT, "Warning")
        raise kopf.PermanentError(f"invalid spec: {message}") from None
    try:
        outcome = converge_children(memo.ticker.cluster, namespace, name, parsed,
                                    lambda objs: kopf.adopt(objs, owner=body))
    except Conflict as exc:
        metrics.ERRORS.labels(namespace, name, "Conflict").inc()
        raise kopf.TemporaryError(f"conflict, retrying: {exc}", delay=2) from exc
    except ApiError as exc:
        metrics.ERRORS.labels(namespace, name, "ApiError").inc()
        raise kopf.TemporaryError(f"API error, retrying: {exc}", delay=10) from exc
    finally:
        metrics.RECONCILE_SECONDS.labels("children").observe(time.perf_counter() - started)
    changed = {k: v for k, v in outcome.items() if v != "unchanged"}
    if changed:
        logger.info("children: %s", ", ".join(f"{k} {v}" for k, v in changed.items()))


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget_series(name: str, namespace: str | None, spec: kopf.Spec, **_: Any) -> None:
    """Children go through their ownerReferences, and kopf drops the per-object memo;
    what is left is this service's series in the operator's own /metrics."""
    metrics.forget_service(namespace or "", name, list((spec.get("pools") or {}).keys()))
