"""The rendered-body cache behind GET /search/{id} and GET /: single-flight, stale-while-rendering, final, cleared."""

from __future__ import annotations

import asyncio
import threading

import pytest

from service.response_cache import ResponseCache


class Renderer:
    """A render that counts its calls and can be held until released (it runs on a worker thread)."""

    def __init__(self, final: bool = False):
        self.calls, self.final = 0, final
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self) -> tuple[bytes, bool]:
        self.calls += 1
        self.gate.wait(5)
        return f"v{self.calls}".encode(), self.final


def test_a_crowd_on_a_cold_key_waits_for_one_render():
    async def main():
        cache, render = ResponseCache(), Renderer()
        render.gate.clear()
        crowd = [asyncio.create_task(cache.fetch("j", render)) for _ in range(20)]
        await asyncio.sleep(0.05)
        render.gate.set()
        return await asyncio.gather(*crowd), render.calls

    bodies, calls = asyncio.run(main())
    assert calls == 1 and set(bodies) == {b"v1"}


def test_stale_body_is_answered_while_one_render_runs():
    async def main():
        cache, render = ResponseCache(ttl_s=0.05), Renderer()
        assert await cache.fetch("j", render) == b"v1"
        assert await cache.fetch("j", render) == b"v1" and render.calls == 1  # fresh: no render
        await asyncio.sleep(0.06)
        render.gate.clear()
        stale = [await cache.fetch("j", render) for _ in range(10)]  # not blocked by the held render
        await asyncio.sleep(0.05)
        assert render.calls == 2 and stale == [b"v1"] * 10
        render.gate.set()
        for _ in range(100):
            if await cache.fetch("j", render) == b"v2":
                return render.calls
            await asyncio.sleep(0.01)
        raise AssertionError("the fresh body never arrived")

    assert asyncio.run(main()) == 2


def test_a_failed_render_reaches_its_waiters_and_the_next_request_retries():
    async def main():
        cache = ResponseCache()

        def broken():
            raise LookupError("no such search")

        with pytest.raises(LookupError):
            await cache.fetch("j", broken)
        return await cache.fetch("j", Renderer())

    assert asyncio.run(main()) == b"v1"


def test_final_bodies_stay_drop_and_clear_forget_and_discard_older_renders():
    async def main():
        cache, final = ResponseCache(ttl_s=0.01), Renderer(final=True)
        await cache.fetch("done", final)
        await asyncio.sleep(0.02)
        assert await cache.fetch("done", final) == b"v1" and final.calls == 1
        cache.drop("done")
        assert await cache.fetch("done", final) == b"v2"
        slow = Renderer()
        slow.gate.clear()
        flight = asyncio.create_task(cache.fetch("index", slow))
        await asyncio.sleep(0.05)
        cache.clear()  # e.g. a POST /search while the list was being rendered without it
        slow.gate.set()
        assert await flight == b"v1"  # its waiter gets it...
        return await cache.fetch("index", slow)  # ...but it is not kept

    assert asyncio.run(main()) == b"v2"


def test_bounded():
    async def main():
        cache = ResponseCache(max_entries=3)
        for i in range(5):
            await cache.fetch(str(i), Renderer(final=True))
        return cache

    cache = asyncio.run(main())
    assert list(cache._entries) == ["2", "3", "4"]
