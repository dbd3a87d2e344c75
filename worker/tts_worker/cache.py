"""An LRU cache of encoded audio, bounded by entries and by bytes, safe across threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

CacheKey = tuple[str, str, str, float, str]  # text, voice, emotion, speed, format


@dataclass(frozen=True)
class CachedAudio:
    body: bytes
    content_type: str
    duration: float
    synthesis_seconds: float
    sample_rate: int


class AudioCache:
    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._items: OrderedDict[CacheKey, CachedAudio] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._max_entries > 0 and self._max_bytes > 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: CacheKey) -> CachedAudio | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: CacheKey, item: CachedAudio) -> None:
        size = len(item.body)
        if not self.enabled or size > self._max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._items[key] = item
            self._bytes += size
            while len(self._items) > self._max_entries or self._bytes > self._max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= len(evicted.body)
