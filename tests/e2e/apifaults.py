"""API faults between the operator and the real API server: a small HTTP proxy.

The operator's kubeconfig points at `FaultProxy` (plain HTTP on loopback, the operator's
ServiceAccount token in every request); the proxy forwards each request to the API server
over TLS, verified against the cluster's CA, with the token untouched, so the API server
authenticates and authorises the operator exactly as without it. Watches stream through.

A `FaultGate` plan picks requests by method and a path fragment and, for a given number
of them, answers an error *instead of* forwarding (a real 409 or 500 means the write did
not happen), or forwards late. toxiproxy would do the slow part at the TCP level, but it
cannot answer HTTP statuses, and github.com/Shopify/toxiproxy/v2 is not served by the Go
module proxy here; aiohttp (which kopf already depends on) is enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import aiohttp.web

from elastic_tts_dev.processes import free_port

REASONS = {409: "Conflict", 500: "InternalError", 503: "ServiceUnavailable",
           429: "TooManyRequests"}
# Hop-by-hop headers, and those aiohttp sets itself for what it sends on.
NOT_FORWARDED = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
                 "transfer-encoding", "upgrade", "host", "content-length"}


@dataclass
class Fault:
    method: str  # GET, PATCH, POST, DELETE
    path_part: str  # a substring of the path, e.g. "/deployments/"
    status: int | None  # the error to answer, or None to serve it late
    delay: float  # seconds before answering
    remaining: int  # how many requests it still hits

    def matches(self, method: str, path: str, watch: bool) -> bool:
        return (self.remaining > 0 and not watch and method == self.method
                and self.path_part in path)


class FaultGate:
    """The plan, shared by the test thread and the proxy's event loop."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.hits: Counter[str] = Counter()  # "PATCH /deployments/ -> 409" -> count

    def add(self, method: str, path_part: str, *, status: int | None = None,
            delay: float = 0.0, times: int = 1) -> None:
        with self._lock:
            self._faults.append(Fault(method, path_part, status, delay, times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.hits.clear()

    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def pick(self, method: str, path: str, watch: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, watch):
                    fault.remaining -= 1
                    what = f"{fault.status}" if fault.status else f"slow {fault.delay:g}s"
                    self.hits[f"{method} {fault.path_part} -> {what}"] += 1
                    return fault
        return None


class FaultProxy:
    """`url` forwards to `upstream` (the API server) through `gate`."""

    def __init__(self, upstream: str, ca: Path) -> None:
        self.upstream = upstream.rstrip("/")
        self.ca = ca
        self.gate = FaultGate()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.forwarded = 0
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(20) or self._failed is not None:
            raise RuntimeError(f"the fault proxy did not start: {self._failed!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._failed = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        context = ssl.create_default_context(cafile=str(self.ca))
        connector = aiohttp.TCPConnector(ssl=context, limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                         auto_decompress=False) as session:
            self._session = session
            app = aiohttp.web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{path:.*}", self._handle)
            runner = aiohttp.web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = aiohttp.web.TCPSite(runner, "127.0.0.1", self.port)
            await site.start()
            self._ready.set()
            await self._stopped.wait()
            await runner.cleanup()
        # Let the closed TLS connections finish closing before the loop goes (aiohttp's
        # advice for a graceful shutdown), so none is left unclosed.
        await asyncio.sleep(0.25)

    async def _handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        watch = request.query.get("watch") in ("true", "1")
        fault = self.gate.pick(request.method, request.path, watch)
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.status is not None:
                reason = REASONS.get(fault.status, "InternalError")
                return aiohttp.web.json_response(
                    {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                     "reason": reason, "code": fault.status,
                     "message": f"injected by the e2e fault proxy: {reason}"},
                    status=fault.status)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in NOT_FORWARDED}
        self.forwarded += 1
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         headers=headers, data=body or None,
                                         allow_redirects=False) as upstream:
            response = aiohttp.web.StreamResponse(status=upstream.status,
                                                  reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in NOT_FORWARDED:
                    response.headers.add(key, value)
            await response.prepare(request)
            with contextlib.suppress(ConnectionResetError, aiohttp.ClientError):
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)  # a watch streams until one side ends
                await response.write_eof()
            return response
