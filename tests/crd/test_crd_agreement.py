"""The API server (with the CRD in the tree) and the spec model accept and refuse the
same TTSService specs.

The CRD's verdict is the real API server's, on the local cluster: a dry-run create with
kubectl's strict field validation, so its OpenAPI validation, defaulting and CEL rules
decide. Every example and every valid variant passes both; every invalid variant is
refused by both, the server naming the field (or the object holding it) and the model's
message naming the field. The few rules only the operator can check (a map key has no
schema; IANA names and cron values are beyond OpenAPI) are a table of their own, so that
any change to that boundary shows up here.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from elastic_tts.policy.spec import SpecError, parse_spec
from elastic_tts_dev.cluster import LocalCluster
from tests.cluster.fixtures import Installation
from tests.crd import crd_files
from tests.crd.apiserver import ApiServerValidator, Verdict, related

DELETE = object()

_FULL = crd_files.load_example(crd_files.ROOT / "manifests" / "examples" / "full.yaml")
_POOL = {"accelerator": "cpu", "costPerHour": 0.1, "throughput": 20}


def variant(**changes: Any) -> dict[str, Any]:
    """The full example with changes at dotted paths under spec ("pools.gpu.minReplicas")."""
    resource = copy.deepcopy(_FULL)
    for dotted, value in changes.items():
        node = resource["spec"]
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is DELETE:
            del node[int(last) if isinstance(node, list) else last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return resource


def window(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "start": "0 9 * * 1-5", "duration": "1h", **extra}


@pytest.fixture(scope="module")
def server(installed: Installation, local_cluster: LocalCluster
           ) -> Iterator[ApiServerValidator]:
    """The API server, serving exactly the CRD in crds/ (the chart installed its copy)."""
    served = json.loads(local_cluster.kubectl(
        "get", "crd", crd_files.crd()["metadata"]["name"], "-o", "json").stdout)
    assert served["spec"]["versions"] == json.loads(json.dumps(crd_files.crd()["spec"][
        "versions"])), "the installed CRD is not crds/ttsservice.yaml: run `make manifests`"
    namespace = local_cluster.create_namespace("crd-agreement")
    yield ApiServerValidator(local_cluster.api, namespace)
    local_cluster.delete_namespace(namespace)


def crd_verdict(server: ApiServerValidator, resource: dict[str, Any]) -> list[str]:
    return server.verdict(resource).messages


def model_verdict(resource: dict[str, Any]) -> list[str]:
    try:
        parse_spec(resource)
    except SpecError as exc:
        return exc.problems
    return []


# Paths use "__" between keys, because pool names contain "-".
VALID = {
    "duration in whole seconds": variant(schedule__windows__0__duration=3600),
    "duration 1h30m": variant(schedule__windows__0__duration="1h30m"),
    "duration 45s": variant(schedule__windows__0__duration="45s"),
    "duration 0h5m": variant(schedule__windows__0__duration="0h5m"),
    "metric requests": variant(scaling__metric="requests", scaling__charactersPerRequest=80),
    "fallback replicas": variant(
        scaling__onMetricsUnavailable="fallbackReplicas", scaling__fallbackReplicas={"cpu": 2}
    ),
    "cpu spot falls back to cpu": variant(
        **{"pools__cpu-spot": {**_POOL, "capacityType": "spot", "fallbackTo": "cpu"}}
    ),
    "cpu-only window with a ceiling only": variant(
        schedule__windows=[window("quiet", mode="cpu-only", pools={"cpu": {"maxReplicas": 2}})]
    ),
    "routing off without a gateway": variant(routing={"enabled": False}),
    "paused": variant(paused=True),
    "twelve pools": variant(
        pools={f"p{i}": dict(_POOL) for i in range(12)}, schedule={}, routing={}
    ),
    "thirty-two windows": variant(schedule__windows=[window(f"w{i}") for i in range(32)]),
    "pool name of 40 characters": variant(pools={"a" * 40: dict(_POOL)}, schedule={}),
    "bounds at their limits": variant(
        scaling__targetUtilization=1,
        scaling__tolerance=0.5,
        scaling__maxSpotFraction=0,
        scaling__scaleDownStabilizationSeconds=3600,
        pools__gpu__minReplicas=8,
    ),
    "query override": variant(scaling__prometheus__query="sum(rate(tts_characters_total[1m]))"),
    "pass-through pod settings": variant(
        pools__cpu__affinity={"nodeAffinity": {"anything": ["goes"]}},
        pools__cpu__resources={"requests": {"cpu": "500m"}},
    ),
    "empty sections": variant(scaling={}, schedule={}, routing={}),
}

# label -> (resource, a fragment of the model's problem that names the field)
INVALID = {
    "no pools": (variant(pools=DELETE, scaling={}, schedule={}), "spec.pools: is required"),
    "empty pools": (variant(pools={}, scaling={}, schedule={}), "spec.pools: must name"),
    "thirteen pools": (
        variant(pools={f"p{i}": dict(_POOL) for i in range(13)}, schedule={}),
        "spec.pools:",
    ),
    "unknown accelerator": (variant(pools__gpu__accelerator="tpu"), "gpu.accelerator"),
    "no accelerator": (variant(pools__cpu__accelerator=DELETE), "cpu.accelerator: is required"),
    "no costPerHour": (variant(pools__cpu__costPerHour=DELETE), "cpu.costPerHour: is required"),
    "no throughput": (variant(pools__cpu__throughput=DELETE), "cpu.throughput: is required"),
    "throughput zero": (variant(pools__cpu__throughput=0), "cpu.throughput"),
    "negative cost": (variant(pools__cpu__costPerHour=-1), "cpu.costPerHour"),
    "negative minReplicas": (variant(pools__cpu__minReplicas=-1), "cpu.minReplicas"),
    "min above max": (variant(pools__cpu__minReplicas=7), "cpu.minReplicas: must not exceed"),
    "replicas as text": (variant(pools__cpu__maxReplicas="two"), "cpu.maxReplicas"),
    "replicas as a fraction": (variant(pools__cpu__maxReplicas=2.5), "cpu.maxReplicas"),
    "concurrency zero": (variant(pools__cpu__concurrency=0), "cpu.concurrency"),
    "unknown capacity type": (variant(pools__cpu__capacityType="preemptible"), "capacityType"),
    "on-demand pool falls back": (
        variant(pools__cpu__fallbackTo="gpu"),
        "cpu.fallbackTo: only spot pools fall back",
    ),
    "fallback to a missing pool": (
        variant(**{"pools__gpu-spot__fallbackTo": "gpu-x"}),
        "no on-demand pool named 'gpu-x'",
    ),
    "fallback to a spot pool": (
        variant(**{"pools__gpu-spot__fallbackTo": "gpu-spot"}),
        "gpu-spot.fallbackTo",
    ),
    "fallback name too long": (
        variant(**{"pools__gpu-spot__fallbackTo": "g" * 41}),
        "gpu-spot.fallbackTo",
    ),
    "fallbackTo empty": (variant(**{"pools__gpu-spot__fallbackTo": ""}), "fallbackTo"),
    "backoff zero": (variant(**{"pools__gpu-spot__backoffSeconds": 0}), "backoffSeconds"),
    "negative fallbackAfter": (
        variant(**{"pools__gpu-spot__fallbackAfterSeconds": -5}),
        "fallbackAfterSeconds",
    ),
    "negative cold start": (variant(pools__cpu__coldStartSeconds=-1), "coldStartSeconds"),
    "unknown pool field": (variant(pools__cpu__replicas=3), "cpu.replicas: unknown field"),
    "unknown spec field": (variant(replicas=3), "spec.replicas: unknown field"),
    "nodeSelector value not text": (variant(pools__cpu__nodeSelector={"a": 1}), "nodeSelector"),
    "tolerations not a list": (variant(pools__cpu__tolerations={"key": "x"}), "tolerations"),
    "unknown engine": (variant(engine="coqui"), "spec.engine"),
    "empty model": (variant(model=""), "spec.model"),
    "blank image": (variant(image="   "), "spec.image"),
    "voices not text": (variant(voices=[1]), "spec.voices"),
    "paused as text": (variant(paused="yes"), "spec.paused"),
    "unknown metric": (variant(scaling__metric="bytes"), "scaling.metric"),
    "utilization zero": (variant(scaling__targetUtilization=0), "targetUtilization"),
    "utilization above one": (variant(scaling__targetUtilization=1.5), "targetUtilization"),
    "slo zero": (variant(scaling__latencySLOSeconds=0), "latencySLOSeconds"),
    "interval below a second": (variant(scaling__intervalSeconds=0.5), "intervalSeconds"),
    "scale-down window over an hour": (
        variant(scaling__scaleDownStabilizationSeconds=4000),
        "scaleDownStabilizationSeconds",
    ),
    "tolerance too wide": (variant(scaling__tolerance=0.6), "scaling.tolerance"),
    "spot fraction above one": (variant(scaling__maxSpotFraction=1.2), "maxSpotFraction"),
    "characters per request zero": (
        variant(scaling__charactersPerRequest=0),
        "charactersPerRequest",
    ),
    "negative transition grace": (
        variant(scaling__transitionGraceSeconds=-1),
        "transitionGraceSeconds",
    ),
    "unknown metrics policy": (
        variant(scaling__onMetricsUnavailable="scaleToZero"),
        "onMetricsUnavailable",
    ),
    "fallback policy without replicas": (
        variant(scaling__onMetricsUnavailable="fallbackReplicas"),
        "scaling.fallbackReplicas: is required",
    ),
    "fallback replicas for a missing pool": (
        variant(scaling__fallbackReplicas={"tpu": 1}),
        "fallbackReplicas.tpu: no pool",
    ),
    "negative fallback replicas": (
        variant(scaling__fallbackReplicas={"cpu": -1}),
        "fallbackReplicas.cpu",
    ),
    "unknown scaling field": (variant(scaling__cooldown=60), "scaling.cooldown: unknown field"),
    "prometheus url without scheme": (
        variant(scaling__prometheus__url="prometheus:9090"),
        "prometheus.url",
    ),
    "prometheus timeout zero": (
        variant(scaling__prometheus__timeoutSeconds=0),
        "prometheus.timeoutSeconds",
    ),
    "unknown prometheus field": (
        variant(scaling__prometheus__token="x"),
        "prometheus.token: unknown field",
    ),
    "window without a name": (
        variant(schedule__windows__0__name=DELETE),
        "windows[0].name: is required",
    ),
    "window without a start": (
        variant(schedule__windows__0__start=DELETE),
        "windows[0].start: is required",
    ),
    "window without a duration": (
        variant(schedule__windows__0__duration=DELETE),
        "windows[0].duration: is required",
    ),
    "duration in words": (variant(schedule__windows__0__duration="8 hours"), "duration"),
    "duration of zero text": (variant(schedule__windows__0__duration="0h0m"), "duration"),
    "duration of zero seconds": (variant(schedule__windows__0__duration=0), "duration"),
    "negative duration": (variant(schedule__windows__0__duration=-5), "duration"),
    "fractional duration": (variant(schedule__windows__0__duration=1.5), "duration"),
    "unknown window mode": (variant(schedule__windows__0__mode="off"), "windows[0].mode"),
    "cron of four fields": (variant(schedule__windows__0__start="0 9 * *"), "windows[0].start"),
    "window override of a missing pool": (
        variant(schedule__windows__0__pools={"tpu": {"minReplicas": 1}}),
        "pools.tpu: no pool",
    ),
    "window override min above max": (
        variant(schedule__windows__0__pools={"gpu": {"minReplicas": 3, "maxReplicas": 1}}),
        "pools.gpu.minReplicas: must not exceed",
    ),
    "unknown window override field": (
        variant(schedule__windows__0__pools={"gpu": {"replicas": 3}}),
        "gpu.replicas: unknown",
    ),
    "duplicate window names": (
        variant(schedule__windows=[window("peak"), window("peak")]),
        "duplicate window name",
    ),
    "thirty-three windows": (
        variant(schedule__windows=[window(f"w{i}") for i in range(33)]),
        "schedule.windows:",
    ),
    "blank timezone": (variant(schedule__timezone=""), "schedule.timezone"),
    "prewarm as text": (variant(schedule__prewarm="no"), "schedule.prewarm"),
    "routing without a gateway": (
        variant(routing={"enabled": True}),
        "routing.gatewayRef.name: is required",
    ),
    "empty gateway name": (variant(routing__gatewayRef__name=""), "gatewayRef.name"),
    "unknown routing field": (variant(routing__weights=[1]), "routing.weights: unknown field"),
}

# Refused by the operator's model only: the CRD cannot state these (see its descriptions).
MODEL_ONLY = {
    "uppercase pool name": (variant(pools={"GPU": dict(_POOL)}, schedule={}), "spec.pools.GPU"),
    "pool name with underscore": (
        variant(pools={"cpu_1": dict(_POOL)}, schedule={}),
        "spec.pools.cpu_1",
    ),
    "pool name of 41 characters": (
        variant(pools={"a" * 41: dict(_POOL)}, schedule={}),
        "spec.pools.aaaa",
    ),
    "unknown timezone": (variant(schedule__timezone="Mars/Olympus"), "schedule.timezone"),
    "cron minute out of range": (
        variant(schedule__windows__0__start="61 9 * * *"),
        "windows[0].start",
    ),
}


@pytest.mark.parametrize("path", crd_files.EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid_for_both(server: ApiServerValidator, path: Path) -> None:
    resource = crd_files.load_example(path)
    assert crd_verdict(server, resource) == []
    assert model_verdict(resource) == []


@pytest.mark.parametrize("resource", VALID.values(), ids=VALID.keys())
def test_valid_variants_are_valid_for_both(server: ApiServerValidator,
                                           resource: dict[str, Any]) -> None:
    assert crd_verdict(server, resource) == []
    assert model_verdict(resource) == []


def model_paths(problems: list[str]) -> list[str]:
    return [p.split(": ", 1)[0] for p in problems]


@pytest.mark.parametrize(("resource", "names"), INVALID.values(), ids=INVALID.keys())
def test_invalid_variants_are_refused_by_both(server: ApiServerValidator,
                                              resource: dict[str, Any], names: str) -> None:
    verdict = server.verdict(resource)
    assert verdict.problems, "the API server accepts what the model refuses"
    problems = model_verdict(resource)
    assert any(names in p for p in problems), problems
    assert any(related(where, path) for where, _ in verdict.problems
               for path in model_paths(problems)), (verdict.messages, problems)


@pytest.mark.parametrize(("resource", "names"), MODEL_ONLY.values(), ids=MODEL_ONLY.keys())
def test_operator_only_rules_stay_operator_only(server: ApiServerValidator,
                                                resource: dict[str, Any], names: str) -> None:
    assert crd_verdict(server, resource) == []
    assert any(names in p for p in model_verdict(resource))


def test_kubectl_shows_the_field_of_every_refusal(
        server: ApiServerValidator, local_cluster: LocalCluster) -> None:
    """What a user sees: `kubectl apply` (a server-side dry run) of every invalid
    variant at once prints, for each, the field path the API server named."""
    named = {}
    for index, resource in enumerate(INVALID_RESOURCES):
        named[f"invalid-{index}"] = copy.deepcopy(resource)
        named[f"invalid-{index}"]["metadata"]["name"] = f"invalid-{index}"
    done = local_cluster.kubectl(
        "apply", "--dry-run=server", "-n", server.namespace, "-f", "-", check=False,
        input=yaml.safe_dump_all(named.values()))
    assert done.returncode != 0
    # One error per object, in order (strict decoding errors do not name the object).
    errors = re.split(r"^Error from server ", done.stderr, flags=re.M)[1:]
    assert len(errors) == len(named), done.stderr[-2000:]
    for (name, resource), error in zip(named.items(), errors, strict=True):
        assert f'"{name}"' in error or "strict decoding error" in error, error
        fields = [where for where, _ in server.verdict(resource).problems if where]
        assert any(f in error for f in fields), (name, fields, error)


def cel_rules(schema: dict[str, Any]) -> list[dict[str, str]]:
    """Every x-kubernetes-validations entry anywhere in the schema."""
    found = list(schema.get("x-kubernetes-validations", []))
    for sub in schema.get("properties", {}).values():
        found += cel_rules(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += cel_rules(schema[key])
    return found


INVALID_RESOURCES = [resource for resource, _ in INVALID.values()]


def test_every_cel_rule_refuses_at_least_one_invalid_variant(
        server: ApiServerValidator) -> None:
    failing = {message for resource in INVALID_RESOURCES
               for message in server.verdict(resource).messages}
    for rule in cel_rules(crd_files.root_schema()):
        assert any(rule["message"] in m for m in failing), f"never exercised: {rule['rule']}"


@pytest.mark.parametrize(
    "resource",
    [crd_files.load_example(p) for p in crd_files.EXAMPLES] + list(VALID.values()),
    ids=[p.name for p in crd_files.EXAMPLES] + list(VALID.keys()),
)
def test_schema_defaults_are_the_model_defaults(server: ApiServerValidator,
                                                resource: dict[str, Any]) -> None:
    """What the API server stores after defaulting means the same spec to the model."""
    verdict: Verdict = server.verdict(resource)
    assert verdict.stored is not None, verdict.messages
    assert parse_spec(verdict.stored) == parse_spec(resource)


def test_defaulting_fills_every_section_of_the_minimal_example(
        server: ApiServerValidator) -> None:
    minimal = crd_files.load_example(crd_files.ROOT / "manifests/examples/minimal.yaml")
    stored = server.verdict(minimal).stored
    assert stored is not None
    spec = stored["spec"]
    assert spec["scaling"]["prometheus"]["timeoutSeconds"] == 5
    assert spec["schedule"] == {"timezone": "UTC", "prewarm": True}
    assert spec["pools"]["cpu"]["capacityType"] == "on-demand"
