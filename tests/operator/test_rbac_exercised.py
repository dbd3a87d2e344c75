"""The chart's RBAC, both ways, from the API server's own audit log: one operator (with
peering) takes a TTSService through everything it can do, and then every request its
ServiceAccount made was allowed by the ClusterRole, and every rule the ClusterRole grants
was used (or is listed below with the reason it cannot be exercised here)."""

from __future__ import annotations

from datetime import datetime

import yaml

from elastic_tts.adapters.kube import PykubeCluster
from elastic_tts.reconcile.kinds import (
    DEPLOYMENTS,
    HTTPROUTES,
    LAST_APPLIED,
    PDBS,
    SERVICES,
    TTSSERVICES,
)
from elastic_tts_dev.prometheus import Exporter, Prometheus
from elastic_tts_dev.specs import tts
from tests.cluster.fixtures import CHART, Installation, OperatorFactory
from tests.operator.cluster import wait_for
from tests.operator.test_operator_lifecycle import ready_pods, status_of
from tests.operator.test_operator_resilience import KOPF_PEERINGS

# Grants the scenario cannot exercise, and why each is still needed.
NOT_EXERCISED = {
    # The operator watches namespaced peerings when given --namespace, as here.
    **{(verb, "kopf.dev", "clusterkopfpeerings"): "peering with --all-namespaces"
       for verb in ("get", "list", "watch", "patch")},
    ("get", "kopf.dev", "kopfpeerings"): "kopf reads a peering by name only when it "
                                         "has to create or repair it",
}


def granted_rules() -> set[tuple[str, str, str]]:
    rules = yaml.safe_load((CHART / "files" / "rbac-rules.yaml").read_text())
    return {(verb, group, resource) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def requests_made(installed: Installation, since: datetime) -> set[tuple[str, str, str]]:
    made = set()
    for event in installed.cluster.audit_events(user=installed.user):
        if datetime.fromisoformat(event["requestReceivedTimestamp"]) < since:
            continue
        ref = event.get("objectRef")
        if not ref:
            continue  # discovery and other non-resource paths
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource")
                                      else "")
        made.add((event["verb"], ref.get("apiGroup", ""), resource))
    return made


def test_every_call_is_granted_and_every_grant_is_used(
        start_operator: OperatorFactory, admin: PykubeCluster, namespace: str,
        prometheus: Prometheus, exporter: Exporter, installed: Installation) -> None:
    since = datetime.now().astimezone()
    admin.create(KOPF_PEERINGS, namespace, {"apiVersion": "kopf.dev/v1",
                                            "kind": "KopfPeering",
                                            "metadata": {"name": "elastic-tts"}})
    start_operator(namespace, standalone=False, peering="elastic-tts")
    exporter.set_load("audited", "gpu", 150, namespace=namespace)
    admin.create(TTSSERVICES, namespace, tts(
        "audited", prometheus.url,
        routing={"enabled": True, "gatewayRef": {"name": "gw"}}))
    wait_for("Ready gpu pods (pods on nodes: the node list)",
             lambda: ready_pods(admin, namespace, "audited-gpu"), timeout=40)
    wait_for("the HTTPRoute", lambda: admin.get(HTTPROUTES, namespace, "audited"))
    # Children rendered by an earlier operator version (another last rendering recorded)
    # are patched to the current rendering.
    for kind in (PDBS, SERVICES):
        admin.patch(kind, namespace, "audited",
                    {"metadata": {"annotations": {LAST_APPLIED: "{}"}}})
    # A new image rolls the cpu Deployment; a pool removed and routing turned off: their
    # children are deleted.
    admin.patch(TTSSERVICES, namespace, "audited", {"spec": {
        "image": "ghcr.io/elastic-tts/worker-espeak:0.2.0", "routing": {"enabled": False},
        "pools": {"gpu": None}}})
    wait_for("the gpu Deployment pruned",
             lambda: admin.get(DEPLOYMENTS, namespace, "audited-gpu") is None, timeout=30)
    wait_for("the HTTPRoute pruned",
             lambda: admin.get(HTTPROUTES, namespace, "audited") is None, timeout=30)
    wait_for("per-pool Services pruned",
             lambda: admin.get(SERVICES, namespace, "audited-cpu") is None, timeout=30)
    generation = (admin.get(TTSSERVICES, namespace, "audited") or {})["metadata"]["generation"]
    wait_for("status for the new generation", lambda: status_of(
        admin, namespace, "audited").get("observedGeneration") == generation)

    granted, made = granted_rules(), requests_made(installed, since)
    assert made - granted == set(), "calls the ClusterRole does not grant"
    assert granted - made - set(NOT_EXERCISED) == set(), "grants nothing used"
    assert set(NOT_EXERCISED) <= granted
