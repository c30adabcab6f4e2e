"""Rendered GET /search/{id} bodies, kept so that many pollers cost one rendering.

A finished search never changes again, so its body is kept until evicted; an
unfinished one is kept for TTL_S, the staleness a poller accepts (the web page
polls once a second). Cancelling in this process drops the entry at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

TTL_S = 0.5
MAX_ENTRIES = 1024


class ResponseCache:
    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES):
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[0] < time.monotonic():
                return None
            self._entries.move_to_end(key)
            return hit[1]

    def put(self, key: str, body: bytes, *, final: bool) -> None:
        expires = float("inf") if final else time.monotonic() + self.ttl_s
        with self._lock:
            self._entries[key] = (expires, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
