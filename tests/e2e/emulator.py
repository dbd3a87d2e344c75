"""KMock's KubernetesEmulator, served over HTTP on 127.0.0.1 from a background thread, for the
e2e loop tier only (tests/e2e), until it moves onto the local cluster too.

`ApiServer` extends the emulator, for these tests only, with what a real API server (and
its garbage collector) does and KMock does not; nothing else is changed:
- metadata.name from generateName; metadata.uid, resourceVersion, creationTimestamp on
  create; resourceVersion on every write; metadata.generation bumped when spec
  changes (as for CRDs with a status subresource);
- the status subresource: a PATCH to .../status changes only .status;
- the scale subresource of Deployments: GET/PATCH .../scale speak autoscaling/v1 Scale
  and PATCH changes only .spec.replicas;
- labelSelector (equality terms) on list requests;
- JSON-patch `test` preconditions failing with 422, as kopf expects;
- cascading deletion over ownerReferences, which in a real cluster is the garbage
  collector in kube-controller-manager, run here a moment after the owner goes;
- the cluster-scoped namespace list/watch (``/api/v1/namespaces``), whose path KMock 0.8
  fails to parse (it reads "namespaces" as the start of a namespaced path); kopf asks
  for it on start-up.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
from kmock import action

from elastic_tts_dev import crd as ttsservice_crd
from elastic_tts_dev.merge_patch import apply_merge_patch

_RV = itertools.count(1000)


def _matches(obj: dict[str, Any], selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def rbac_attributes(method: str, path: str, query: Mapping[str, str]
                    ) -> tuple[str, str, str] | None:
    """(verb, API group, resource[/subresource]) of a request, as the API server's
    authorizer sees it; None for discovery and other non-resource paths."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]  # namespaced: drop "namespaces/<ns>"
    resource, named = rest[0], len(rest) >= 2
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if method == "GET":
        verb = "get" if named else ("watch" if query.get("watch") in ("true", "1") else "list")
    else:
        verb = verbs.get(method, method.lower())
    return verb, group, resource


class ApiServer(kmock.KubernetesEmulator):
    REQUEST_LOG = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Who asked for what, by bearer token: what an RBAC authorizer would be asked.
        self.calls: set[tuple[str, str, str, str]] = set()

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        attributes = rbac_attributes(raw_request.method, raw_request.path, raw_request.query)
        if attributes is not None:
            token = raw_request.headers.get("Authorization", "").removeprefix("Bearer ")
            self.calls.add((token, *attributes))
        # KMock logs every request for assertions and re-scans that log to route each new
        # one, so cost grows with all traffic so far. Nothing here asserts on the request
        # log; keeping its tail keeps the emulator's cost per request flat.
        del self._requests[:-self.REQUEST_LOG]
        if raw_request.path.rstrip("/") == "/api/v1/namespaces":
            return await self._serve_namespaces(raw_request)
        return await super().__call__(raw_request)

    async def _serve_namespaces(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        names = sorted({ns for (_, ns, _) in list(self.objects.keys()) if ns})
        items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                 for n in names]
        if raw.query.get("watch") != "true":
            return aiohttp.web.json_response(
                {"kind": "NamespaceList", "apiVersion": "v1",
                 "metadata": {"resourceVersion": str(next(_RV))}, "items": items})
        stream = aiohttp.web.StreamResponse()
        await stream.prepare(raw)
        timeout = float(raw.query.get("timeoutSeconds") or 60)
        await asyncio.sleep(min(timeout, 60))  # no namespace events: hold, then end
        return stream

    def _stored(self, request: kmock.Request) -> Any:
        key = (request.resource, request.namespace, request.name)
        if key in self.objects and not self.objects[key].deleted:
            return self.objects[key]
        return None

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        data = request.data if isinstance(request.data, dict) else None
        stored = self._stored(request) if request.name else None
        if request.action == action.UPDATE and isinstance(request.data, list) and stored:
            self._json_patch_preconditions(request.data, stored.raw)
        if request.action == action.CREATE and data is not None:
            meta = data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = str(next(_RV))
            meta["generation"] = 1
            if request.namespace:
                meta["namespace"] = request.namespace
            meta.setdefault("creationTimestamp",
                            datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        elif request.action == action.UPDATE and data is not None and stored is not None:
            if request.subresource == "status":
                data = {"status": data.get("status")}
            elif request.subresource == "scale":
                replicas = (data.get("spec") or {}).get("replicas")
                data = {"spec": {"replicas": replicas}}
            else:
                old = stored.raw
                new_spec = apply_merge_patch(old.get("spec"), data.get("spec"))
                if "spec" in data and new_spec != old.get("spec"):
                    data.setdefault("metadata", {})["generation"] = (
                        int(old.get("metadata", {}).get("generation") or 1) + 1)
            data.setdefault("metadata", {})["resourceVersion"] = str(next(_RV))
            if data is not request.data:
                request.data.clear()
                request.data.update(data)
        if request.subresource == "scale" and request.action in (action.FETCH, action.UPDATE):
            if stored is None:
                raise kmock.KubernetesObjectNotFoundError()
            if request.action == action.UPDATE:
                await super()._handle(request)
            return aiohttp.web.json_response(self._scale(self._stored(request).raw))
        owner_uid = stored.raw.get("metadata", {}).get("uid") if stored is not None else None
        response = await super()._handle(request)
        if request.action == action.DELETE and owner_uid and response.status < 300:
            uid = owner_uid
            asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(
                self._collect_garbage(uid)))
        return response

    @staticmethod
    def _json_patch_preconditions(ops: list[Any], current: dict[str, Any]) -> None:
        """A failed `test` op is 422 Unprocessable Entity, which kopf reads as "newer
        changes are pending, retry on the next cycle" (KMock answers 500). A passing
        patch gets a new resourceVersion like any other write."""
        version = current.get("metadata", {}).get("resourceVersion")
        for op in ops:
            if op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion" \
                    and op.get("value") != version:
                raise kmock.KubernetesError(
                    status=422, reason="Invalid",
                    message=f"the object has been modified: resourceVersion {version}")
        ops.append({"op": "replace", "path": "/metadata/resourceVersion",
                    "value": str(next(_RV))})

    @staticmethod
    def _scale(deployment: dict[str, Any]) -> dict[str, Any]:
        meta = deployment.get("metadata", {})
        replicas = int(deployment.get("spec", {}).get("replicas") or 0)
        labels = deployment.get("spec", {}).get("selector", {}).get("matchLabels", {})
        return {
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid",
                                                  "resourceVersion")},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas,
                       "selector": ",".join(f"{k}={v}" for k, v in labels.items())},
        }

    async def _serve_list(self, request: kmock.Request) -> Any:
        result = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            result["items"] = [o for o in result["items"] if _matches(o, selector)]
        return result

    async def _collect_garbage(self, owner_uid: str | None) -> None:
        if not owner_uid:
            return
        doomed = []
        for (resource, namespace, name), obj in list(self.objects.items()):
            if obj.deleted:
                continue
            refs = obj.raw.get("metadata", {}).get("ownerReferences") or []
            if any(ref.get("uid") == owner_uid for ref in refs):
                doomed.append((resource, namespace, name))
        for resource, namespace, name in doomed:
            group = resource.group
            base = "/api/v1" if group == "" else f"/apis/{group}/{resource.version}"
            where = f"/namespaces/{namespace}" if namespace else ""
            await self.delete(f"{base}{where}/{resource.plural}/{name}")


def register_ttsservice_crd(server: kmock.KubernetesEmulator) -> None:
    """Serve the TTSService resource as its CRD declares it: group, served versions,
    names, scope and subresources all come from the CRD (the one `make manifests` writes
    to crds/, generated from the same model)."""
    crd = ttsservice_crd.crd()
    names = crd["spec"]["names"]
    for version in crd["spec"]["versions"]:
        if not version.get("served"):
            continue
        server.resources[f"{crd['spec']['group']}/{version['name']}/{names['plural']}"] = (
            kmock.ResourceInfo(
                kind=names["kind"], singular=names["singular"],
                namespaced=crd["spec"]["scope"] == "Namespaced",
                shortnames=set(names.get("shortNames", [])),
                categories=set(names.get("categories", [])),
                subresources=set(version.get("subresources", {})),
                verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
            )
        )


def register_gateway_api(server: kmock.KubernetesEmulator) -> None:
    server.resources["gateway.networking.k8s.io/v1/httproutes"] = kmock.ResourceInfo(
        kind="HTTPRoute", singular="httproute", namespaced=True,
        verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
    )


class EmulatorThread:
    """Runs ApiServer + kmock.Server in its own event loop thread; `url` once started."""

    def __init__(self) -> None:
        self.url = ""
        self.tester_kubeconfig: Path | None = None  # set by the fixture that writes it
        self.server: ApiServer | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)

    def start(self) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("the KMock emulator did not start within 20 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    def make_server(self) -> ApiServer:
        """The API server to serve; the e2e tier serves one behind a fault gate."""
        return ApiServer()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.make_server() as server, kmock.Server(server) as http:
            server.fallback  # noqa: B018  (the emulator's default reactions are set up)
            server.resources.load_bundled()
            register_ttsservice_crd(server)
            register_gateway_api(server)
            self.server = server
            self.url = str(http.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()


if __name__ == "__main__":  # `python -m tests.e2e.emulator`: serve until stdin closes
    import sys

    emulator = EmulatorThread().start()
    print(emulator.url, flush=True)
    sys.stdin.read()
    emulator.stop()
