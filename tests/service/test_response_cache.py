"""The rendered-body cache behind GET /search/{id}: fresh, stale-while-rendering, final, dropped."""

from __future__ import annotations

import time

from service.response_cache import ResponseCache


def test_one_renderer_while_stale_others_get_the_stale_body():
    cache = ResponseCache(ttl_s=0.05)
    assert cache.get("j") is None  # first caller renders
    cache.put("j", b"v1", final=False)
    assert cache.get("j") == b"v1"
    time.sleep(0.06)
    assert cache.get("j") is None  # stale: this caller renders...
    assert cache.get("j") == b"v1"  # ...and the others keep getting the stale body meanwhile
    cache.put("j", b"v2", final=False)
    assert cache.get("j") == b"v2"


def test_failed_render_is_released_and_final_bodies_stay():
    cache = ResponseCache(ttl_s=0.01)
    assert cache.get("j") is None
    cache.release("j")
    assert cache.get("j") is None  # the next caller may try again
    cache.put("j", b"done", final=True)
    time.sleep(0.02)
    assert cache.get("j") == b"done"
    cache.drop("j")
    assert cache.get("j") is None


def test_bounded():
    cache = ResponseCache(max_entries=3)
    for i in range(5):
        cache.get(str(i))
        cache.put(str(i), b"x", final=True)
    assert cache.get("0") is None and cache.get("4") == b"x"
