"""Rendered response bodies, kept so that many pollers cost one rendering (GET /search/{id}, GET /).

A finished search never changes again, so its body is kept until evicted; an
unfinished one is fresh for ttl_s (the web page polls once a second). Renders are
single-flight: while a key is being rendered (on a worker thread), the requests
for it wait for that one render if there is no body yet, or get the stale body
meanwhile. So a crowd of pollers never renders a key more than once at a time,
and a fresh or stale body is answered on the event loop without a thread hop.
clear()/drop() also discard a render that started before them (it may predate
a submission or a cancel), though its waiters still get its body.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

TTL_S = 0.5
MAX_ENTRIES = 1024
Render = Callable[[], tuple[bytes, bool]]  # -> (body, final: never changes again)


class ResponseCache:
    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES):
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (fresh until, body)
        self._rendering: dict[str, asyncio.Future] = {}
        self._generation = 0  # bumped by clear(): renders started before it are not kept
        self._lock = threading.Lock()  # clear()/drop() come from the threadpool (sync routes)

    async def fetch(self, key: str, render: Render) -> bytes:
        """The body for `key`: fresh, or stale while one render runs, or the result of that one render."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] >= time.monotonic():
                self._entries.move_to_end(key)
                return hit[1]
            flight = self._rendering.get(key)
            if flight is None:
                flight = self._rendering[key] = asyncio.ensure_future(self._render(key, render, self._generation))
                flight.add_done_callback(_retrieve)
        if hit is not None:
            return hit[1]
        return await asyncio.shield(flight)  # a cancelled request does not cancel the render the others wait for

    async def _render(self, key: str, render: Render, generation: int) -> bytes:
        try:
            body, final = await run_in_threadpool(render)
        finally:
            with self._lock:
                self._rendering.pop(key, None)
        self.put(key, body, final=final, generation=generation)
        return body

    def put(self, key: str, body: bytes, *, final: bool, generation: int | None = None) -> None:
        expires = float("inf") if final else time.monotonic() + self.ttl_s
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            self._entries[key] = (expires, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            if key in self._rendering:  # its result would be older than the change that dropped it
                self._generation += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1


def _retrieve(flight: asyncio.Future) -> None:
    """A failed render nobody waited for (all got the stale body) is not an unretrieved error: the next one retries."""
    if not flight.cancelled():
        flight.exception()
