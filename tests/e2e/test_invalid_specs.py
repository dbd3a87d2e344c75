"""Invalid TTSServices sent through the API to the running operator: every one rejected,
with an InvalidSpec condition and a Warning event whose message names the field.

The emulator runs no CEL or OpenAPI validation (a real API server would refuse many of
these at admission), so the rejection here is the operator's own, the last line of
defence for what admission lets through.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from elastic_tts.reconcile.kinds import DEPLOYMENTS, TTSSERVICES
from elastic_tts.reconcile.ports import Kind
from elastic_tts_dev.prometheus import Prometheus
from tests.e2e.checks import condition_is
from tests.e2e.conftest import LoopFactory
from tests.e2e.report import REPORT
from tests.e2e.specs import e2e_service
from tests.operator.cluster import wait_for

EVENTS = Kind("v1", "events", "Event")
Spec = dict[str, Any]

# (label, how the valid spec is broken, the field the rejection must name)
ROWS: list[tuple[str, Callable[[Spec], None], str]] = [
    ("min above max", lambda s: s["pools"]["cpu"].update(minReplicas=3),
     "spec.pools.cpu.minReplicas"),
    ("fallbackTo names no pool", lambda s: s["pools"]["spot"].update(fallbackTo="tpu"),
     "spec.pools.spot.fallbackTo"),
    ("fallbackTo names a spot pool", lambda s: s["pools"]["spot"].update(fallbackTo="spot"),
     "spec.pools.spot.fallbackTo"),
    ("utilisation above 1", lambda s: s["scaling"].update(targetUtilization=1.5),
     "spec.scaling.targetUtilization"),
    ("negative throughput", lambda s: s["pools"]["gpu"].update(throughput=-5),
     "spec.pools.gpu.throughput"),
    ("unknown accelerator", lambda s: s["pools"]["gpu"].update(accelerator="tpu"),
     "spec.pools.gpu.accelerator"),
    ("unknown capacity type", lambda s: s["pools"]["gpu"].update(capacityType="reserved"),
     "spec.pools.gpu.capacityType"),
    ("spot fraction above 1", lambda s: s["scaling"].update(maxSpotFraction=2),
     "spec.scaling.maxSpotFraction"),
    ("unknown time zone", lambda s: s.update(schedule={"timezone": "Mars/Base"}),
     "spec.schedule.timezone"),
    ("bad cron", lambda s: s.update(schedule={"timezone": "UTC", "windows": [
        {"name": "w", "start": "61 * * * *", "duration": "1h", "mode": "shutdown"}]}),
     "spec.schedule.windows[0].start"),
    ("no pools", lambda s: s.update(pools={}), "spec.pools"),
    ("interval 0", lambda s: s["scaling"].update(intervalSeconds=0),
     "spec.scaling.intervalSeconds"),
    ("unknown metric", lambda s: s["scaling"].update(metric="bytes"),
     "spec.scaling.metric"),
    ("Prometheus URL not http", lambda s: s["scaling"]["prometheus"].update(url="ftp://x"),
     "spec.scaling.prometheus.url"),
    ("bad pool name", lambda s: s["pools"].update(Bad_Name=dict(s["pools"]["cpu"])),
     "spec.pools.Bad_Name"),
]


def broken(name: str, prometheus_url: str, breaker: Callable[[Spec], None]) -> Spec:
    service = e2e_service(name, prometheus_url)
    spec = copy.deepcopy(service["spec"])
    breaker(spec)
    service["spec"] = spec
    return service


@pytest.mark.timeout(240)
def test_invalid_specs_are_rejected_naming_the_field(make_loop: LoopFactory,
                                                     e2e_prometheus: Prometheus) -> None:
    services = [broken(f"bad-{i}", e2e_prometheus.url, breaker)
                for i, (_, breaker, _) in enumerate(ROWS)]
    loop = make_loop(services[0])
    for service in services[1:]:
        loop.cluster.create(TTSSERVICES, loop.namespace, service)
    rejected = []
    for (label, _, field), service in zip(ROWS, services, strict=True):
        name = service["metadata"]["name"]
        cond = wait_for(f"InvalidSpec on {label!r}",
                        lambda n=name: condition_is(loop, "InvalidSpec", "True", n), 60)
        assert field in cond["message"], (label, cond["message"])
        event = wait_for(f"an InvalidSpec event for {label!r}", lambda n=name: [
            e for e in loop.cluster.list(EVENTS, loop.namespace)
            if e.get("involvedObject", {}).get("name") == n
            and e.get("reason") == "InvalidSpec"], 30)
        assert field in event[0]["message"], (label, event[0]["message"])
        rejected.append(label)
    assert not loop.cluster.list(DEPLOYMENTS, loop.namespace)  # nothing was rendered
    REPORT.bad_input["invalid TTSService specs"] = (
        f"{len(rejected)}/{len(ROWS)} rejected (InvalidSpec condition + event naming the "
        f"field): {', '.join(rejected)}")
