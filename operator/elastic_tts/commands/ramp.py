"""The I/O of `elastic-tts calibrate`: start a worker and time it to Ready, and drive it
with closed-loop clients, one concurrency level at a time.

Each request is sent as the clients of ADMISSION.md send theirs: a fresh connection, its
own X-Request-Id, and the latency from sending to the last byte of the answer. Every text
is distinct (a counter in Chinese numerals closes it), so the worker's audio cache never
answers for the engine, and every text has the same length, so levels compare.
Everything is bounded: each request by a timeout, each level by its seconds, the whole
ramp by a request count and a deadline.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elastic_tts.commands.args import CommandError

BASE_TEXT = ("今天天气很好，我们一起去公园散步。春天来了，花开得很漂亮，孩子们在草地上玩耍。"
             "请在下一个路口向右转，然后直走三百米就到了。欢迎使用语音合成服务，祝您生活愉快。")
DIGITS = "〇一二三四五六七八九"
COUNTER_CHARS = 6  # distinct texts for a million requests
PROBE_EVERY = 0.05  # seconds between two readiness probes while a worker starts
STOP_GRACE = 30.0  # seconds a started worker has to drain after SIGTERM


MIN_CHARS = 2 * COUNTER_CHARS


def texts(chars: int) -> Iterator[str]:
    """Distinct texts of exactly `chars` (at least MIN_CHARS) characters, without end."""
    stem_length = chars - COUNTER_CHARS
    stem = (BASE_TEXT * (stem_length // len(BASE_TEXT) + 1))[:stem_length]
    for index in itertools.count():
        yield stem + "".join(DIGITS[int(d)] for d in f"{index % 10**COUNTER_CHARS:06d}")


@dataclass
class Outcome:
    """One request as the client saw it."""

    status: int  # HTTP status; 0 when no answer came (refused connection, timeout)
    latency: float  # seconds from sending to the last byte
    chars: int
    problem: str = ""  # the error, for a status other than 200
    retry_after: float = 0.0  # a refusal's hint: retry-after-ms, else Retry-After


@dataclass
class Level:
    """The outcomes of one concurrency level."""

    concurrency: int
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0  # from the level's start to its last answer


class Worker:
    """A worker command started by calibrate, its process group, and its log."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.command = list(command)
        self.log_path = log
        self._log = log.open("wb")
        self.started = time.monotonic()
        try:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=self._log,
                stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True)
        except OSError as exc:
            self._log.close()
            raise CommandError(f"cannot start {self.command[0]!r}: "
                               f"{exc.strerror or exc}") from None

    def wait_ready(self, url: str, timeout: float) -> float:
        """Seconds from the process's start to its first 200 on /readyz."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise CommandError(f"the worker exited with code {code} before it was "
                                   f"Ready: {self.last_line() or 'no output'}")
            with contextlib.suppress(OSError, ValueError), \
                    urllib.request.urlopen(f"{url}/readyz", timeout=1.0) as answer:
                if answer.status == 200:
                    return time.monotonic() - self.started
            time.sleep(PROBE_EVERY)
        raise CommandError(f"the worker was not Ready within {timeout:g} s "
                           f"(--ready-timeout); last output: {self.last_line() or 'none'}")

    def last_line(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.log_path.read_bytes()[-4096:].decode("utf-8", "replace").splitlines()
            return next((line.strip() for line in reversed(lines) if line.strip()), "")[:300]
        return ""

    def stop(self) -> None:
        """SIGTERM (the worker drains), then SIGKILL for what is left of its group."""
        # ProcessLookupError: the group is already gone, which is what stop wants.
        try:
            with contextlib.suppress(ProcessLookupError):
                if self.process.poll() is None:
                    os.killpg(self.process.pid, signal.SIGTERM)
                    try:
                        self.process.wait(STOP_GRACE)
                    except subprocess.TimeoutExpired:
                        os.killpg(self.process.pid, signal.SIGKILL)
                        self.process.wait(5)
        finally:
            self._log.close()


def readiness(url: str, timeout: float) -> dict[str, Any]:
    """The worker's /readyz answer (engine and device), or a one-line CommandError."""
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout) as answer:
            body = json.loads(answer.read(65536))
    except urllib.error.HTTPError as exc:
        raise CommandError(f"{url} is not Ready: HTTP {exc.code} {_error_text(exc)}") from None
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot reach {url}: {_reason(exc)}") from None
    return body if isinstance(body, dict) else {}


def send(url: str, text: str, timeout: float) -> Outcome:
    body = json.dumps({"text": text, "format": "wav"}, ensure_ascii=False).encode()
    request = urllib.request.Request(
        f"{url}/tts", data=body, method="POST",
        headers={"Content-Type": "application/json", "X-Request-Id": uuid.uuid4().hex,
                 "Connection": "close"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
            status = answer.status
        return Outcome(status, time.monotonic() - started, len(text))
    except urllib.error.HTTPError as exc:
        problem = _error_text(exc)
        return Outcome(exc.code, time.monotonic() - started, len(text), problem,
                       _retry_after(exc.headers))
    except (OSError, ValueError) as exc:  # refused, reset, timed out, not HTTP
        return Outcome(0, time.monotonic() - started, len(text), _reason(exc))


def run_level(url: str, concurrency: int, seconds: float, budget: int, text_source: Any,
              timeout: float) -> Level:
    """`concurrency` clients, each sending its next request when its last is answered,
    until `seconds` have passed or `budget` requests have been sent."""
    level = Level(concurrency)
    lock = threading.Lock()
    remaining = [budget]
    started = time.monotonic()
    deadline = started + seconds

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
                text = next(text_source)
            outcome = send(url, text, timeout)
            with lock:
                level.outcomes.append(outcome)
            if outcome.status in (429, 503):
                # A refused client waits as it is told (ADMISSION.md), within this level.
                time.sleep(min(outcome.retry_after, max(0.0, deadline - time.monotonic())))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout + 5)
    level.seconds = time.monotonic() - started
    return level


def _retry_after(headers: Any) -> float:
    """retry-after-ms when 0 < v <= 60 s (as openai-python reads it), else Retry-After."""
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        millis = float(headers.get("retry-after-ms"))
        if 0 < millis <= 60_000:
            return millis / 1000
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        return min(60.0, max(1.0, float(headers.get("Retry-After"))))
    return 1.0


def _error_text(exc: urllib.error.HTTPError) -> str:
    with contextlib.suppress(OSError, ValueError):
        body = json.loads(exc.read(4096))
        if isinstance(body, dict):
            return str(body.get("message") or body.get("error") or "")[:200]
    return str(exc.reason)[:200]


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return (getattr(reason, "strerror", None) or str(reason) or type(exc).__name__)[:200]
