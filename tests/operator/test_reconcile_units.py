"""Pure pieces of the reconcile layer, table-driven: merge patches, pool observation
(pending age, interruptions and doomed nodes), route weights, query placeholders,
child-name limits."""

from __future__ import annotations

from typing import Any

import pytest

from elastic_tts.adapters.prometheus import render_query
from elastic_tts.policy import SpecError, parse_spec
from elastic_tts.reconcile.children import merge_patch
from elastic_tts.reconcile.observe import observe_pools
from elastic_tts.reconcile.render import render_children, route_weights
from elastic_tts_dev.specs import CPU, GPU, SPOT


@pytest.mark.parametrize(("old", "new", "patch"), [
    ({"a": 1}, {"a": 1}, {}),
    ({"a": 1}, {"a": 2}, {"a": 2}),
    ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
    ({"s": {"x": 1, "y": 2}}, {"s": {"x": 1}}, {"s": {"y": None}}),
    ({"l": [1, 2]}, {"l": [1]}, {"l": [1]}),
    ({}, {"n": {"k": "v"}}, {"n": {"k": "v"}}),
])
def test_merge_patch(old: Any, new: Any, patch: Any) -> None:
    assert merge_patch(old, new) == patch


SPEC = parse_spec({"pools": {"gpu": GPU, "spot": SPOT, "cpu": CPU}})
NOW = 1_800_000_000.0


def pod(pool: str, phase: str = "Running", ready: bool = True, node: str = "n1",
        age: float = 0, uid: str | None = None, **status: Any) -> dict[str, Any]:
    from elastic_tts.reconcile.status import timestamp
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    conditions += status.pop("conditions", [])
    return {"metadata": {"name": f"{pool}-{uid}", "uid": uid or f"{pool}-{phase}-{node}",
                         "labels": {"elastictts.io/pool": pool},
                         "creationTimestamp": timestamp(NOW - age)},
            "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conditions, **status}}


def deployment(pool: str, replicas: int) -> dict[str, Any]:
    return {"metadata": {"labels": {"elastictts.io/pool": pool}}, "spec": {"replicas": replicas}}


def node(name: str, taint: str | None = None) -> dict[str, Any]:
    taints = [{"key": taint, "effect": "NoSchedule"}] if taint else []
    return {"metadata": {"name": name}, "spec": {"taints": taints}}


@pytest.mark.parametrize(("label", "pods", "nodes", "expect"), [
    ("ready pods count", [pod("spot"), pod("spot", uid="b")], [node("n1")],
     {"ready": 2, "pending": 0, "interrupted": 0}),
    ("pending age is the oldest", [pod("spot", "Pending", False, age=30, uid="a"),
                                   pod("spot", "Pending", False, age=90, uid="b")], [],
     {"ready": 0, "pending": 2, "pending_seconds": 90.0}),
    ("evicted is an interruption", [pod("spot", "Failed", False, reason="Evicted")], [],
     {"ready": 0, "interrupted": 1}),
    ("DisruptionTarget is an interruption",
     [pod("spot", conditions=[{"type": "DisruptionTarget", "status": "True"}])], [],
     {"ready": 0, "interrupted": 1}),
    ("spot ITN taint", [pod("spot", node="doomed")],
     [node("doomed", "aws-node-termination-handler/spot-itn")], {"ready": 0, "interrupted": 1}),
    ("GKE impending termination", [pod("spot", node="doomed")],
     [node("doomed", "cloud.google.com/impending-node-termination")], {"interrupted": 1}),
    ("Karpenter disrupted", [pod("spot", node="doomed")],
     [node("doomed", "karpenter.sh/disrupted")], {"interrupted": 1}),
    ("autoscaler deleting", [pod("spot", node="doomed")],
     [node("doomed", "ToBeDeletedByClusterAutoscaler")], {"interrupted": 1}),
    ("an unrelated taint is fine", [pod("spot", node="n2")],
     [node("n2", "nvidia.com/gpu")], {"ready": 1, "interrupted": 0}),
])
def test_observe_pools(label: str, pods: list[dict[str, Any]], nodes: list[dict[str, Any]],
                       expect: dict[str, Any]) -> None:
    view = observe_pools(SPEC, [deployment("spot", 2)], pods, nodes, set(), NOW)
    state = view.states["spot"]
    assert state.current == 2
    for field, value in expect.items():
        assert getattr(state, field) == value, label
    assert view.missing == ["gpu", "cpu"]


def test_an_interruption_is_reported_once() -> None:
    evicted = [pod("spot", "Failed", False, reason="Evicted", uid="x")]
    first = observe_pools(SPEC, [], evicted, [], set(), NOW)
    again = observe_pools(SPEC, [], evicted, [], first.interrupted_uids, NOW + 15)
    assert first.states["spot"].interrupted == 1
    assert again.states["spot"].interrupted == 0


def test_route_weights_follow_ready_capacity() -> None:
    assert route_weights(SPEC, {"gpu": 1, "spot": 1, "cpu": 0}) == {
        "gpu": 500, "spot": 500, "cpu": 0}
    assert route_weights(SPEC, {"gpu": 1, "cpu": 5}) == {"gpu": 500, "spot": 0, "cpu": 500}
    assert route_weights(SPEC, {}) == {"gpu": 1, "spot": 1, "cpu": 1}


def test_query_placeholders() -> None:
    query = render_query('sum(rate($metric{service="$service",ns="$namespace"}[$window]))',
                         "tts", "prod", "1m", "tts_characters_total")
    assert query == 'sum(rate(tts_characters_total{service="tts",ns="prod"}[1m]))'


def test_child_names_must_fit_a_dns_label() -> None:
    with pytest.raises(SpecError) as error:
        parse_spec({"pools": {"gpu": GPU, "spot": SPOT, "cpu": CPU}}, name="x" * 60)
    assert error.value.problems[0].startswith("metadata.name:")
    assert parse_spec({"pools": {"gpu": GPU, "spot": SPOT, "cpu": CPU}}, name="tts") == SPEC


def test_rendering_never_sets_replicas() -> None:
    for child in render_children("tts", SPEC):
        assert "replicas" not in child.get("spec", {})


@pytest.mark.parametrize(("before", "after", "kind", "to", "flipped"), [
    # A first tick with healthy conditions announces nothing (it used to announce
    # MetricsUnavailable and SpotFallback, with the healthy messages, on every first tick).
    (None, {"MetricsAvailable": "True"}, "MetricsAvailable", False, False),
    (None, {"SpotFallback": "False"}, "SpotFallback", True, False),
    (None, {"SpotFallback": "False"}, "SpotFallback", False, False),
    # A condition seen for the first time flips only into its unhealthy state.
    (None, {"MetricsAvailable": "False"}, "MetricsAvailable", False, True),
    (None, {"SpotFallback": "True"}, "SpotFallback", True, True),
    ({"SpotFallback": "True"}, {"SpotFallback": "False"}, "SpotFallback", False, True),
    ({"SpotFallback": "True"}, {"SpotFallback": "True"}, "SpotFallback", True, False),
])
def test_condition_flips(before: dict[str, str] | None, after: dict[str, str], kind: str,
                         to: bool, flipped: bool) -> None:
    from elastic_tts.reconcile.status import flipped_to

    def conditions(states: dict[str, str] | None) -> list[dict[str, str]] | None:
        return None if states is None else [{"type": k, "status": v} for k, v in states.items()]

    assert flipped_to(conditions(before), conditions(after), kind, to) is flipped
