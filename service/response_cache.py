"""Rendered GET /search/{id} bodies, kept so that many pollers cost one rendering.

A finished search never changes again, so its body is kept until evicted; an
unfinished one is fresh for TTL_S (the web page polls once a second). When it
goes stale, one request renders it again while the others are answered with the
stale body meanwhile, so a crowd of pollers never renders it all at once.
Cancelling in this process drops the entry at once.
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
        self._rendering: set[str] = set()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        """A body to answer with now, or None: then the caller renders it and must put() or release()."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] >= time.monotonic():
                self._entries.move_to_end(key)
                return hit[1]
            if hit is not None and key in self._rendering:
                return hit[1]  # stale, but another request is rendering the fresh one
            self._rendering.add(key)
            return None

    def release(self, key: str) -> None:
        """The render failed: let the next request try."""
        with self._lock:
            self._rendering.discard(key)

    def put(self, key: str, body: bytes, *, final: bool) -> None:
        expires = float("inf") if final else time.monotonic() + self.ttl_s
        with self._lock:
            self._rendering.discard(key)
            self._entries[key] = (expires, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._rendering.discard(key)
