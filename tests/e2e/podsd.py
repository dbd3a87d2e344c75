"""Prometheus' Kubernetes pod discovery, served over HTTP service discovery.

Debian's prometheus is built without the Kubernetes discovery (``kubernetes_sd_configs``
is "not found in type config.ScrapeConfig": client-go is not packaged), so the users'
scrape job (`manifests/prometheus/scrape-config.yaml`) cannot run unchanged here. This
serves what that discovery would hand Prometheus for ``role: pod``, from the real API
server: one target per declared container port of every pod that has an IP, with the
``__meta_kubernetes_*`` labels Prometheus documents for that role. Prometheus reads it
through ``http_sd_configs`` and applies the job's own relabelling to it, so the shipped
rules still decide what is scraped and how it is labelled.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pykube

from elastic_tts_dev.processes import free_port

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def _name(key: str) -> str:
    """A label or annotation key as Prometheus spells it in a meta label."""
    return _INVALID.sub("_", key)


def pod_targets(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The role=pod targets of one pod, as Prometheus' Kubernetes discovery builds them."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    ip = status.get("podIP")
    if not ip:
        return []
    common = {
        "__meta_kubernetes_namespace": meta.get("namespace", ""),
        "__meta_kubernetes_pod_name": meta["name"],
        "__meta_kubernetes_pod_ip": ip,
        "__meta_kubernetes_pod_uid": meta.get("uid", ""),
        "__meta_kubernetes_pod_node_name": spec.get("nodeName", ""),
        "__meta_kubernetes_pod_host_ip": status.get("hostIP", ""),
        "__meta_kubernetes_pod_phase": status.get("phase", ""),
        "__meta_kubernetes_pod_ready": next(
            (c["status"].lower() for c in status.get("conditions") or []
             if c.get("type") == "Ready"), "unknown"),
    }
    for key, value in (meta.get("labels") or {}).items():
        common[f"__meta_kubernetes_pod_label_{_name(key)}"] = value
        common[f"__meta_kubernetes_pod_labelpresent_{_name(key)}"] = "true"
    for key, value in (meta.get("annotations") or {}).items():
        common[f"__meta_kubernetes_pod_annotation_{_name(key)}"] = value
        common[f"__meta_kubernetes_pod_annotationpresent_{_name(key)}"] = "true"
    for owner in meta.get("ownerReferences") or []:
        if owner.get("controller"):
            common["__meta_kubernetes_pod_controller_kind"] = owner.get("kind", "")
            common["__meta_kubernetes_pod_controller_name"] = owner.get("name", "")
    targets = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            labels = dict(common)
            labels.update({
                "__meta_kubernetes_pod_container_name": container["name"],
                "__meta_kubernetes_pod_container_image": container.get("image", ""),
                "__meta_kubernetes_pod_container_init": "false",
                "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
                "__meta_kubernetes_pod_container_port_protocol": port.get("protocol", "TCP"),
            })
            targets.append({"targets": [f"{ip}:{port['containerPort']}"], "labels": labels})
    return targets


class PodDiscovery:
    """`url` answers Prometheus' HTTP SD with every pod's targets, listed on each ask."""

    def __init__(self, api: pykube.HTTPClient) -> None:
        self.api = api
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/targets"
        self.errors: list[str] = []
        discovery = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    body = json.dumps(discovery.targets()).encode()
                    code = 200
                except Exception as exc:  # Prometheus keeps the last good answer
                    discovery.errors.append(repr(exc)[:200])
                    body, code = json.dumps({"error": str(exc)}).encode(), 500
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # Prometheus gave up on a slow answer (its SD timeout on a loaded
                    # machine) and asks again at the next refresh; socketserver would
                    # print the traceback to stderr, where later tests read stderr.
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="pod-discovery", daemon=True)

    def targets(self) -> list[dict[str, Any]]:
        answer = self.api.request("GET", url="pods", version="v1", timeout=10)
        answer.raise_for_status()
        return [t for pod in answer.json().get("items") or [] for t in pod_targets(pod)]

    def start(self) -> PodDiscovery:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
