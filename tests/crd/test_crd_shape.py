"""The CRD's names, fields, enums and bounds, checked against the spec model's own."""

from __future__ import annotations

import re
from typing import Any

import pytest

from elastic_tts.policy import spec as model
from tests.crd import crd_files

_POOL = {"accelerator": "cpu", "costPerHour": 0.1, "throughput": 20}


def _allowed_fields(spec: dict[str, Any], where: str) -> set[str]:
    """The field names the model allows at ``where``, read from its unknown-field message."""
    with pytest.raises(model.SpecError) as caught:
        model.parse_spec(spec)
    for problem in caught.value.problems:
        found = re.match(rf"{re.escape(where)}\.zz: unknown field \(allowed: (.*)\)$", problem)
        if found:
            return set(found.group(1).split(", "))
    raise AssertionError(f"no unknown-field problem at {where}: {caught.value.problems}")


def _props(*path: str) -> set[str]:
    node = crd_files.spec_schema()
    for key in path:
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
        node = node.get("items", node)
    return set(node["properties"])


_WINDOW = {"name": "w", "start": "0 9 * * *", "duration": "1h"}
LEVELS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "spec": ({"pools": {"cpu": _POOL}, "zz": 1}, ()),
    "spec.pools.cpu": ({"pools": {"cpu": {**_POOL, "zz": 1}}}, ("pools", "*")),
    "spec.scaling": ({"pools": {"cpu": _POOL}, "scaling": {"zz": 1}}, ("scaling",)),
    "spec.scaling.prometheus": (
        {"pools": {"cpu": _POOL}, "scaling": {"prometheus": {"zz": 1}}},
        ("scaling", "prometheus"),
    ),
    "spec.schedule": ({"pools": {"cpu": _POOL}, "schedule": {"zz": 1}}, ("schedule",)),
    "spec.schedule.windows[0]": (
        {"pools": {"cpu": _POOL}, "schedule": {"windows": [{**_WINDOW, "zz": 1}]}},
        ("schedule", "windows"),
    ),
    "spec.schedule.windows[0].pools.cpu": (
        {
            "pools": {"cpu": _POOL},
            "schedule": {"windows": [{**_WINDOW, "pools": {"cpu": {"zz": 1}}}]},
        },
        ("schedule", "windows", "pools", "*"),
    ),
    "spec.routing": ({"pools": {"cpu": _POOL}, "routing": {"zz": 1}}, ("routing",)),
    "spec.routing.gatewayRef": (
        {"pools": {"cpu": _POOL}, "routing": {"gatewayRef": {"zz": 1}}},
        ("routing", "gatewayRef"),
    ),
}


@pytest.mark.parametrize("where", LEVELS)
def test_the_crd_names_exactly_the_models_fields(where: str) -> None:
    spec, path = LEVELS[where]
    assert _props(*path) == _allowed_fields(spec, where)


def test_enums_and_bounds_match_the_model() -> None:
    spec = crd_files.spec_schema()["properties"]
    pool = spec["pools"]["additionalProperties"]["properties"]
    window = spec["schedule"]["properties"]["windows"]
    assert tuple(spec["engine"]["enum"]) == model.ENGINES
    assert tuple(pool["accelerator"]["enum"]) == model.ACCELERATORS
    assert tuple(pool["capacityType"]["enum"]) == model.CAPACITY_TYPES
    assert tuple(spec["scaling"]["properties"]["metric"]["enum"]) == model.METRICS
    assert tuple(spec["scaling"]["properties"]["onMetricsUnavailable"]["enum"]) == (
        model.ON_METRICS_UNAVAILABLE
    )
    assert tuple(window["items"]["properties"]["mode"]["enum"]) == model.WINDOW_MODES
    assert spec["pools"]["maxProperties"] == model.MAX_POOLS
    assert window["maxItems"] == model.MAX_WINDOWS
    assert pool["fallbackTo"]["maxLength"] == model.POOL_NAME_MAX


def test_names_version_and_subresources() -> None:
    crd = crd_files.crd()
    assert crd["metadata"]["name"] == "ttsservices.elastictts.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["shortNames"] == ["tts"]
    version = crd_files.version()
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_printer_columns_point_at_status_fields_the_schema_declares() -> None:
    columns = {c["name"]: c["jsonPath"] for c in crd_files.version()["additionalPrinterColumns"]}
    assert list(columns) == ["Mode", "GPU", "Spot", "CPU", "Load", "Cost/h", "Ready", "Age"]
    status = crd_files.root_schema()["properties"]["status"]
    for name, path in columns.items():
        if not path.startswith(".status."):
            continue
        node = status
        # A filter like [?(@.type=="Ready")] selects list items; the walk goes into items.
        for key in re.sub(r"\[\?\(.*?\)\]", "", path.removeprefix(".status.")).split("."):
            node = node["properties"][key]
            node = node.get("items", node)
        assert node, name
