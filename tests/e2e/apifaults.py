"""API errors injected at the emulator: 409, 500 and slow answers for chosen requests.

KMock serves a write before it consults user reactions (its emulator stores the object,
then a reaction may answer), so an error reaction would answer 500 for a write that did
happen. A real API server that answers 409 or 500 has not applied the write; to keep that
meaning the gate below answers *before* the emulator sees the request. Everything not
picked by a fault goes through untouched.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass

import aiohttp.web

from tests.e2e.emulator import ApiServer, EmulatorThread

REASONS = {409: "Conflict", 500: "InternalError", 429: "TooManyRequests"}


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
    """The plan, shared by the test thread and the emulator's event loop."""

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


class FaultyApiServer(ApiServer):
    gate: FaultGate

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        fault = self.gate.pick(raw_request.method, raw_request.path,
                               raw_request.query.get("watch") == "true")
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.status is not None:
                reason = REASONS.get(fault.status, "InternalError")
                return aiohttp.web.json_response(
                    {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                     "reason": reason, "code": fault.status,
                     "message": f"injected by the e2e fault gate: {reason}"},
                    status=fault.status)
        return await super().__call__(raw_request)


class FaultyEmulatorThread(EmulatorThread):
    """`EmulatorThread`, serving `FaultyApiServer` with the same resources registered."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = FaultGate()

    def make_server(self) -> ApiServer:
        server = FaultyApiServer()
        server.gate = self.gate
        return server
