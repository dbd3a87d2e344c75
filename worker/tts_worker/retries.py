"""Which requests are retries, so that the offered load counts each request once.

A request is a retry when it carries `X-Retry-Attempt: N` with N > 0 (the header the
project's clients send), OpenAI's `x-stainless-retry-count: N` with N > 0 (what the openai
packages send), or an `X-Request-Id` this process saw within the last `ttl` seconds. The
ids are kept in a bounded set: at most `max_ids`, oldest first out. A retry that carries
neither attempt header and lands on another process or pod is counted again there; the
project's clients always send the attempt header.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

ATTEMPT_HEADERS = ("X-Retry-Attempt", "X-Stainless-Retry-Count")
REQUEST_ID_HEADER = "X-Request-Id"
MAX_ID_LENGTH = 200  # longer ids are not remembered (a client's id is far shorter)


def attempt_number(value: str | None) -> int:
    """The attempt a header names; anything that is not a small whole number is 0."""
    if value is None:
        return 0
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        return 0
    return int(text)


class Headers(Protocol):
    def get(self, key: str) -> str | None: ...


class RetryTracker:
    def __init__(self, ttl: float = 300.0, max_ids: int = 10000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max_ids = max_ids
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def is_retry(self, headers: Headers) -> bool:
        """Whether this request repeats one already offered; remembers its id either way."""
        marked = any(attempt_number(headers.get(name)) > 0 for name in ATTEMPT_HEADERS)
        request_id = (headers.get(REQUEST_ID_HEADER) or "").strip()
        if not request_id or len(request_id) > MAX_ID_LENGTH:
            return marked
        now = self._clock()
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if now - at <= self._ttl and len(self._seen) < self._max_ids:
                    break
                del self._seen[oldest]
            seen = request_id in self._seen
            self._seen[request_id] = now
            self._seen.move_to_end(request_id)
        return marked or seen
