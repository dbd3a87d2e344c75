"""The API server's verdict on a TTSService: a dry-run create (nothing is stored), with
strict field validation as kubectl sends it, against the CRD the chart installed into
the local cluster. It runs the real schema validation, defaulting and CEL rules."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.crd import crd_files

_UNKNOWN = re.compile(r'unknown field "([^"]+)"')


@dataclass
class Verdict:
    """What the API server said: the stored (defaulted) object, or each problem as
    (field path as the server names it, message)."""

    stored: dict[str, Any] | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def messages(self) -> list[str]:
        return [f"{where}: {what}" if where else what for where, what in self.problems]


class ApiServerValidator:
    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self._objects = client.CustomObjectsApi(api)
        self.namespace = namespace
        crd = crd_files.crd()
        self._where = (crd["spec"]["group"], crd_files.version()["name"],
                       crd["spec"]["names"]["plural"])

    def verdict(self, resource: dict[str, Any]) -> Verdict:
        group, version, plural = self._where
        try:
            stored = self._objects.create_namespaced_custom_object(
                group, version, self.namespace, plural, resource, dry_run="All",
                field_validation="Strict")
        except ApiException as exc:
            if exc.status not in (400, 422):
                raise
            return Verdict(problems=_problems(json.loads(exc.body)))
        return Verdict(stored=dict(stored))


def _problems(status: dict[str, Any]) -> list[tuple[str, str]]:
    causes = (status.get("details") or {}).get("causes") or []
    found = [(c.get("field", ""), c.get("message", "")) for c in causes]
    message = str(status.get("message", ""))
    found += [(name, "unknown field") for name in _UNKNOWN.findall(message)]
    return found or [("", message)]


def as_dotted(path: str) -> str:
    """The server's `spec.pools[cpu].x` as the operator writes it: `spec.pools.cpu.x`
    (list indices stay in brackets in both)."""
    return re.sub(r"\[([^\]0-9][^\]]*)\]", r".\1", path)


def related(server_path: str, model_path: str) -> bool:
    """The same field, or one is the object that holds the other."""
    a, b = as_dotted(server_path), as_dotted(model_path)
    shorter, longer = sorted((a, b), key=len)
    if not shorter or not longer.startswith(shorter):
        return False
    return longer == shorter or longer[len(shorter)] in ".["
