"""The search watchdog: notices a search whose runner died and sends it again, to resume its study.

Every search-runner worker (``search-cli worker`` serving the searches queue) runs one watchdog thread.
Every few seconds it lists the active searches whose lease lapsed (search_lease.py): their runner
stopped renewing it, so it is dead or cut off. One watchdog (a short Redis guard picks it) sends
the search's message again with its task id; the copy that runs takes the lease and resumes the
Optuna study (finished trials kept, lost ones failed and replaced). A dead runner is noticed within
the lease TTL plus one check interval (about 40 s by default); without the watchdog its message
would come back only after the broker's visibility timeout (an hour).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis

from workers.ledger import PREFIX, redis_client
from workers.search_lease import lapsed, lease_ttl_s

log = logging.getLogger(__name__)


def check_interval_s() -> float:
    return max(0.5, lease_ttl_s() / 3)


def resend_lapsed(app: Any, client: redis.Redis, revoked: set[str] | frozenset = frozenset()) -> list[str]:
    """Send again every search whose runner died; returns their study names."""
    sent = []
    for study, entry in lapsed(client):
        if entry["task_id"] in revoked:
            continue  # cancelled: the service revoked it; nothing to resume
        # one watchdog re-sends; the guard outlives a queued copy's wait for a free runner thread
        if not client.set(f"{PREFIX}:search:resent:{study}", 1, nx=True, ex=int(max(10, 4 * lease_ttl_s()))):
            continue
        log.warning("search %s: its runner stopped renewing its lease (dead?); sending it again to resume "
                    "its study", study)
        app.send_task("devicefit.run_search", kwargs=entry["kwargs"], task_id=entry["task_id"],
                      queue=entry["queue"])
        sent.append(study)
    return sent


class Watchdog:
    def __init__(self, app: Any):
        self.app = app
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="search watchdog", daemon=True)

    def start(self) -> Watchdog:
        self.thread.start()
        return self

    def _loop(self) -> None:
        from celery.worker import state

        client = redis_client(self.app.conf.broker_url)
        while not self.stop.wait(check_interval_s()):
            try:
                resend_lapsed(self.app, client, state.revoked)
            except Exception as exc:  # noqa: BLE001 - a Redis outage or a bad entry: try again next round
                log.warning("search watchdog: %s: %s", type(exc).__name__, exc)
