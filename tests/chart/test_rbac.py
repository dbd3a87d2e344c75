"""The operator's RBAC: no wildcards, one list for chart and manifests. That the list is
exactly what the operator calls is checked against its recorded calls in
tests/operator/test_operator_lifecycle.py."""

from __future__ import annotations

from typing import Any

import yaml

from tests.chart import chart_files as cf
from tests.crd.crd_files import ROOT

RULES_FILE = cf.CHART / "files" / "rbac-rules.yaml"


def _file_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return rules


def test_no_wildcards_and_no_resource_names() -> None:
    for rule in _file_rules():
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        for key in ("apiGroups", "resources", "verbs"):
            assert not any("*" in item for item in rule[key]), rule


def test_the_chart_and_install_yaml_use_the_one_list() -> None:
    (chart_role,) = cf.of_kind(cf.objects(), "ClusterRole")
    install = list(yaml.safe_load_all((ROOT / "manifests/install.yaml").read_text("utf-8")))
    (plain_role,) = cf.of_kind(install, "ClusterRole")
    assert chart_role["rules"] == plain_role["rules"] == _file_rules()


def test_the_binding_names_the_operators_service_account() -> None:
    docs = cf.objects()
    (binding,) = cf.of_kind(docs, "ClusterRoleBinding")
    (account,) = cf.of_kind(docs, "ServiceAccount")
    (deployment,) = cf.of_kind(docs, "Deployment")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": cf.NAMESPACE}
    ]
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"]
        == (account["metadata"]["name"])
    )
