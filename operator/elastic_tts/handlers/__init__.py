"""kopf handlers of the elastic-tts operator. Importing this module registers them, so
both ``kopf run -m elastic_tts.handlers`` and ``elastic-tts run`` work.

State lives in kopf's memos: the operator-level memo holds what every service shares
(the Ticker: API clients, settings, the node cache), made at startup from the
``tick_settings`` it is given; each TTSService's own memo (a shallow copy kopf makes on
first sight, and drops when the object is gone) adds that service's engine memory.

`operator_task` starts the operator in-process, as a coroutine; the CLI passes the same
memo to ``kopf.run``. (The tests run `elastic-tts run` processes on the local cluster.)
"""

from __future__ import annotations

from collections.abc import Collection, Coroutine
from typing import Any

import kopf

from elastic_tts.handlers import autoscaler, lifecycle
from elastic_tts.reconcile.tick import TickSettings

PEERING_NAME = "elastic-tts"


def operator_memo(settings: TickSettings | None = None) -> kopf.Memo:
    return kopf.Memo(tick_settings=settings or TickSettings())


def operator_task(*, namespaces: Collection[str] = (), clusterwide: bool = False,
                  standalone: bool = False, liveness_endpoint: str | None = None,
                  peering_name: str = PEERING_NAME, stop_flag: Any = None,
                  ready_flag: Any = None, settings: TickSettings | None = None,
                  ) -> Coroutine[None, None, None]:
    """The operator as a coroutine. With peering (the default) a second replica waits as
    a standby and takes over when the active one stops renewing its peering record; the
    peering object (kopf.dev ClusterKopfPeering, or KopfPeering per namespace) must exist.
    A named peering is mandatory in kopf, so standalone runs pass no name."""
    return kopf.operator(
        registry=kopf.get_default_registry(),
        namespaces=list(namespaces), clusterwide=clusterwide, standalone=standalone,
        peering_name=None if standalone else peering_name,
        liveness_endpoint=liveness_endpoint,
        stop_flag=stop_flag, ready_flag=ready_flag,
        memo=operator_memo(settings or TickSettings(cluster_wide=clusterwide)),
    )


__all__ = ["PEERING_NAME", "autoscaler", "lifecycle", "operator_memo", "operator_task"]
