"""Redis bookkeeping that makes an evaluation idempotent and its loss detectable.

Keys, per evaluation key ``study:trial:stage`` (EvalTask.key):
- ``result``   the outcome (EvalResult JSON or an error), written once; a
               redelivered or re-submitted task finds it and does not re-run.
- ``claim``    who is running it now, with a short TTL refreshed by a
               heartbeat thread: a second copy of the task waits while the
               claim lives and takes over when it lapses (its runner died).
- ``started``  the claim token of the latest run, kept after the claim
               lapses: the executor sees "started, no claim, no result" and
               re-submits (a whole worker was killed; its message would only
               come back after the broker's visibility timeout).
- ``attempts`` runs started; a candidate that keeps killing its worker
               fails for good instead of looping.
Order matters: a run writes its result before dropping its claim, so a reader
that sees neither has seen a lost run.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis

PREFIX = "devicefit"
RESULT_TTL_S = 24 * 3600  # outcomes matter only while their search runs
T = TypeVar("T")

_CLAIM = """
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
redis.call('set', KEYS[2], ARGV[1], 'EX', ARGV[3])
local attempt = redis.call('incr', KEYS[3])
redis.call('expire', KEYS[3], ARGV[3])
return attempt
"""
_DELETE_IF_OWNER = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def heartbeat_ttl_s() -> float:
    """Seconds a claim survives without a heartbeat (DEVICEFIT_HEARTBEAT_TTL, default 15)."""
    return float(os.environ.get("DEVICEFIT_HEARTBEAT_TTL") or 15.0)


def max_attempts() -> int:
    return int(os.environ.get("DEVICEFIT_MAX_ATTEMPTS") or 3)


def redis_client(url: str, *, timeout_s: float = 10.0) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=5,
                                socket_keepalive=True, health_check_interval=10)


def key_of(kind: str, key: str) -> str:
    """The Redis key of one ledger entry; ``key`` is ``<executor scope>/<study:trial:stage>``."""
    return f"{PREFIX}:{kind}:{key}"


def scoped(scope: str | None, key: str) -> str:
    return f"{scope}/{key}" if scope else key


def new_token(worker: str) -> str:
    return f"{worker}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def retrying(fn: Callable[[], T], *, give_up_after_s: float = 180.0) -> T:
    """Run a Redis operation, waiting out a Redis restart (connection refused) instead of failing."""
    deadline = time.monotonic() + give_up_after_s
    while True:
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class Ledger:
    """The ledger on one Redis database."""

    def __init__(self, client: redis.Redis):
        self.r = client

    # -- worker side -------------------------------------------------------
    def result(self, key: str) -> dict[str, Any] | None:
        raw = retrying(lambda: self.r.get(key_of("result", key)))
        return None if raw is None else json.loads(raw)

    def claim(self, key: str, token: str) -> int:
        """Claim a run: its attempt number (1 = first run), or 0 while another run holds the claim.

        Atomic (one Lua script), so a visible claim always comes with its
        started token and attempt count, whenever the claimer is killed.
        """
        ttl_ms = int(heartbeat_ttl_s() * 1000)
        names = [key_of(kind, key) for kind in ("claim", "started", "attempts")]
        return int(retrying(lambda: self.r.eval(_CLAIM, 3, *names, token, ttl_ms, RESULT_TTL_S)))

    @contextmanager
    def heartbeat(self, key: str, token: str) -> Iterator[None]:
        """Keep the claim alive while the body runs (re-creating it after a Redis restart)."""
        stop = threading.Event()
        ttl = heartbeat_ttl_s()

        def beat() -> None:
            while not stop.wait(ttl / 4):
                try:
                    self.r.set(key_of("claim", key), token, px=int(ttl * 1000))
                except redis.RedisError:
                    pass  # Redis is restarting; the next beat re-creates the claim

        thread = threading.Thread(target=beat, name=f"heartbeat {key}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def finish(self, key: str, token: str, outcome: dict[str, Any], notify: str | None) -> None:
        """Store the outcome, then drop the claim (in this order), then wake the waiting executor."""
        data = json.dumps(outcome)

        def write() -> None:
            self.r.set(key_of("result", key), data, ex=RESULT_TTL_S)
            self.r.eval(_DELETE_IF_OWNER, 1, key_of("claim", key), token)
            if notify:
                self.notify(notify, key)

        retrying(write)

    def notify(self, channel: str, key: str) -> None:
        pipe = self.r.pipeline()
        pipe.rpush(channel, key)
        pipe.expire(channel, 3600)
        pipe.execute()

    # -- executor side -----------------------------------------------------
    def snapshot(self, keys: list[str], scope: str | None = None
                 ) -> dict[str, tuple[dict[str, Any] | None, bool, str | None]]:
        """key -> (outcome or None, claimed now, started token or None), read atomically."""
        if not keys:
            return {}
        names = [key_of(kind, scoped(scope, k)) for k in keys for kind in ("result", "claim", "started")]
        values = self.r.mget(names)
        out = {}
        for i, k in enumerate(keys):
            raw, claim, started = values[3 * i: 3 * i + 3]
            out[k] = (None if raw is None else json.loads(raw), claim is not None,
                      None if started is None else started.decode())
        return out
