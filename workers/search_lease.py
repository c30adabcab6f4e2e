"""Exactly one live engine per search: a lease per running search, and a registry of unfinished ones.

Redis keys (``study`` is the search's Optuna study name, unique per search):
- ``devicefit:search:lease:<study>``  the token of the runner whose engine runs the search; short TTL,
  renewed by a heartbeat thread. A second copy of the search (Celery redelivered its message, or the
  watchdog re-sent it) finds the lease taken and is dropped while the first one lives.
- ``devicefit:search:active``         hash study -> how to send the search again (task id, kwargs), for
  every search that started and has not finished. The watchdog (watchdog.py) re-sends an entry
  whose lease lapsed: its runner died, and the new copy resumes the Optuna study.
- ``devicefit:search:done:<study>``   set when the search finished (or was cancelled or failed), so a
  late duplicate never runs a finished search again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from workers.ledger import PREFIX, retrying

log = logging.getLogger(__name__)

ACTIVE = f"{PREFIX}:search:active"
DONE_TTL_S = 7 * 24 * 3600
# take the lease when free, or keep it when it is ours; 0 when another runner holds it
_TAKE = """
local holder = redis.call('get', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def lease_ttl_s() -> float:
    """Seconds a runner's lease survives without a heartbeat (DEVICEFIT_SEARCH_LEASE_TTL, default 30)."""
    return float(os.environ.get("DEVICEFIT_SEARCH_LEASE_TTL") or 30.0)


def lease_key(study: str) -> str:
    return f"{PREFIX}:search:lease:{study}"


def done_key(study: str) -> str:
    return f"{PREFIX}:search:done:{study}"


class LeaseHeld(RuntimeError):
    """Another live runner holds this search (or it already finished): this copy must not run it."""


class SearchLease:
    """The lease of one search, held by one runner while its engine runs."""

    def __init__(self, client: redis.Redis, study: str, worker: str):
        self.r, self.study = client, study
        self.token = f"{worker}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"
        self.lost = threading.Event()  # someone else took it: this engine is no longer the one
        self.entry = ""  # how to send this search again (the registry's value)

    def take(self) -> None:
        """Take the lease or raise LeaseHeld; a finished search is never taken again."""
        if retrying(lambda: self.r.exists(done_key(self.study))):
            raise LeaseHeld(f"search {self.study} already finished")
        ttl_ms = int(lease_ttl_s() * 1000)
        if not retrying(lambda: self.r.eval(_TAKE, 1, lease_key(self.study), self.token, ttl_ms)):
            holder = self.r.get(lease_key(self.study))
            raise LeaseHeld(f"search {self.study} is running on {holder.decode() if holder else 'another runner'}")

    @contextmanager
    def held(self, task_id: str, kwargs: dict[str, Any], queue: str) -> Iterator[SearchLease]:
        """Take the lease, register the search as active, renew the lease until the body ends."""
        self.take()
        self.entry = json.dumps({"task_id": task_id, "kwargs": kwargs, "queue": queue, "token": self.token})
        retrying(lambda: self.r.hset(ACTIVE, self.study, self.entry))
        stop = threading.Event()
        beat = threading.Thread(target=self._renew, args=(stop,), name=f"lease {self.study}", daemon=True)
        beat.start()
        try:
            yield self
        finally:
            stop.set()
            beat.join()

    def finish(self) -> None:
        """The search is over for good (done, failed or cancelled): no copy may run it again."""
        def write() -> None:
            pipe = self.r.pipeline()
            pipe.set(done_key(self.study), self.token, ex=DONE_TTL_S)
            pipe.hdel(ACTIVE, self.study)
            pipe.execute()
            self.r.eval(_RELEASE, 1, lease_key(self.study), self.token)

        retrying(write)

    def _renew(self, stop: threading.Event) -> None:
        ttl = lease_ttl_s()
        while not stop.wait(ttl / 4):
            try:
                if not self.r.eval(_TAKE, 1, lease_key(self.study), self.token, int(ttl * 1000)):
                    if not self.lost.is_set():
                        log.error("search %s: another runner took the lease; this engine stops", self.study)
                    self.lost.set()
                else:  # after a Redis restart the registry is gone too: list the search again
                    self.r.hsetnx(ACTIVE, self.study, self.entry)
            except redis.RedisError:
                pass  # Redis is restarting; the next renewal re-creates the lease


def lapsed(client: redis.Redis) -> list[tuple[str, dict[str, Any]]]:
    """Active searches whose runner stopped renewing its lease (and that did not finish)."""
    out = []
    for study, raw in client.hgetall(ACTIVE).items():
        study = study.decode()
        if client.exists(lease_key(study)) or client.exists(done_key(study)):
            continue
        out.append((study, json.loads(raw)))
    return out
