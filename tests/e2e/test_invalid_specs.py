"""Invalid TTSServices applied with the real kubectl, with the operator running: every
one is refused, naming the field, by one of two layers, and nothing is rendered:

- the API server itself, at admission, for what the CRD's schema and CEL rules state
  (kubectl exits non-zero and its error names the field);
- the operator, for what the schema cannot state (an IANA zone, a cron expression): the
  object is admitted and gets an InvalidSpec condition and a Warning event naming the
  field.

Which layer refuses each is the real API server's answer; the test asserts that one of
them does, and the report lists which. (tests/crd checks every CEL rule row by row.)
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from elastic_tts.reconcile.kinds import DEPLOYMENTS
from elastic_tts.reconcile.ports import Kind
from elastic_tts_dev.prometheus import Prometheus
from tests.crd.apiserver import related
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
    service = e2e_service(name, prometheus_url)  # no node pools: nothing may run anyway
    spec = copy.deepcopy(service["spec"])
    breaker(spec)
    service["spec"] = spec
    return service


def names(message: str, field: str) -> bool:
    """The operator's message names `field`."""
    return field in message


def refused_at(stderr: str, field: str) -> list[str]:
    """The paths kubectl's error names that are `field` or an object holding it (a CEL
    rule on a map names the map, e.g. ``spec.pools`` for a pool's fallbackTo)."""
    paths = re.findall(r"(spec[^\s:,]*): ", stderr)
    return [path for path in paths if related(path, field) and path != "spec"]


@pytest.mark.timeout(240)
def test_invalid_specs_are_rejected_naming_the_field(make_loop: LoopFactory,
                                                     e2e_prometheus: Prometheus) -> None:
    services = [broken(f"bad-{i}", e2e_prometheus.url, breaker)
                for i, (_, breaker, _) in enumerate(ROWS)]
    valid = e2e_service("valid", e2e_prometheus.url)
    loop = make_loop(lambda nodes: valid, nodes={})
    at_admission, by_operator = [], []
    for (label, _, field), service in zip(ROWS, services, strict=True):
        applied = loop.local.kubectl("apply", "-n", loop.namespace, "-f", "-", check=False,
                                     input=json.dumps(service))
        if applied.returncode != 0:
            where = refused_at(applied.stderr, field)
            assert where, (label, applied.stderr)
            at_admission.append(f"{label} ({where[0]})")
            continue
        name = service["metadata"]["name"]
        cond = wait_for(f"InvalidSpec on {label!r}",
                        lambda n=name: condition_is(loop, "InvalidSpec", "True", n), 60)
        assert names(cond["message"], field), (label, cond["message"])
        event = wait_for(f"an InvalidSpec event for {label!r}", lambda n=name: [
            e for e in loop.cluster.list(EVENTS, loop.namespace)
            if e.get("involvedObject", {}).get("name") == n
            and e.get("reason") == "InvalidSpec"], 30)
        assert names(event[0]["message"], field), (label, event[0]["message"])
        assert event[0]["type"] == "Warning"
        by_operator.append(label)
    # Nothing of the invalid ones was rendered: only the valid service has Deployments.
    rendered = {d["metadata"]["name"] for d in loop.cluster.list(DEPLOYMENTS, loop.namespace)}
    assert rendered == {f"valid-{pool}" for pool in valid["spec"]["pools"]}, rendered
    REPORT.bad_input["invalid TTSService specs"] = (
        f"{len(at_admission) + len(by_operator)}/{len(ROWS)} refused naming the field; by "
        f"the API server at admission ({len(at_admission)}): {', '.join(at_admission)}; "
        f"by the operator, InvalidSpec condition + Warning event ({len(by_operator)}): "
        f"{', '.join(by_operator) or 'none'}")
