"""CeleryExecutor: the engine's Executor protocol, evaluating candidates on Celery workers.

submit() sends a ``devicefit.evaluate`` message (the EvalTask as JSON) to the
task's queue and returns a concurrent.futures.Future. Ledger entries are scoped
by this executor's id: two searches that happen to use the same key (e.g.
"sensitivity:0:proxy") never read each other's results. One background thread
waits for "done" notices from the workers (a Redis list, so a result is seen
at once, not at the next poll) and reads outcomes from the ledger; it also
- re-submits a candidate whose run stopped heartbeating (its worker was killed),
- re-submits every unfinished candidate when Redis lost its data (restart),
- resolves each key's Future exactly once: duplicates of a run are ignored.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import redis
from kombu.exceptions import OperationalError

import search.errors
from search.errors import DeviceFitError, SpecError
from search.executor import EvalResult, EvalTask
from workers.celery_app import broker_url, make_app
from workers.ledger import PREFIX, Ledger, redis_client
from workers.queues import GENERAL, queue_for

log = logging.getLogger(__name__)
# what a Redis outage looks like from here; the loop waits it out
_OUTAGE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OperationalError, OSError)
_SEND_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


class EvaluationFailed(RuntimeError):
    """A worker could not evaluate a candidate (a bug or a crash, not bad input)."""


@dataclass
class _Pending:
    task: EvalTask
    future: Future
    queue: str
    sent: bool = False
    lost_runs_handled: set[str] = field(default_factory=set)  # started-tokens already re-submitted for
    celery_ids: list[str] = field(default_factory=list)


def check_broker_url(url: str) -> str:
    if urlparse(url).scheme not in ("redis", "rediss"):
        raise SpecError(f"broker URL {url!r} is not a Redis URL: write redis://HOST:PORT/DB "
                        "(e.g. redis://127.0.0.1:6379/0)")
    return url


def executor_from_url(url: str | None = None, **opts: Any) -> CeleryExecutor:
    """A CeleryExecutor on the broker at ``url`` (default: DEVICEFIT_BROKER or redis://127.0.0.1:6379/0)."""
    return CeleryExecutor(url, **opts)


class CeleryExecutor:
    """Evaluates EvalTasks on Celery workers reached through a Redis broker."""

    def __init__(self, broker: str | None = None, *, max_in_flight: int | None = None,
                 poll_interval_s: float = 0.5, discover_timeout_s: float = 1.0):
        self.url = check_broker_url(broker or broker_url())
        self.poll_interval_s = poll_interval_s
        self._ledger = Ledger(redis_client(self.url, timeout_s=poll_interval_s + 10))
        try:
            self._ledger.r.ping()
        except redis.RedisError as exc:
            raise SpecError(f"cannot reach the broker at {self.url} ({type(exc).__name__}); start Redis "
                            "or fix --broker") from None
        self._app = make_app(self.url)
        self.id = uuid.uuid4().hex[:12]
        self._notices = f"{PREFIX}:notify:{self.id}"
        self._marker = f"{PREFIX}:executor:{self.id}"
        self._ledger.r.set(self._marker, 1, ex=3600)
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self.stats: Counter[str] = Counter()
        self._queues_checked: set[str] = set()
        self._max_in_flight = max_in_flight or self._discover(discover_timeout_s)
        self._thread = threading.Thread(target=self._loop, name=f"celery-executor {self.id}", daemon=True)
        self._thread.start()

    # -- Executor protocol --------------------------------------------------
    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    def submit(self, task: EvalTask) -> Future[EvalResult]:
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("CeleryExecutor is shut down")
            if task.key in self._pending:  # the same key twice is one evaluation
                return self._pending[task.key].future
            pending = _Pending(task, Future(), queue_for(task))
            self._pending[task.key] = pending
            check_queue = pending.queue not in self._queues_checked and pending.queue != GENERAL
            self._queues_checked.add(pending.queue)
        if check_queue:
            threading.Thread(target=self._warn_if_unserved, args=(pending.queue,), daemon=True).start()
        try:
            self._send(pending)
        except _OUTAGE as exc:
            log.warning("could not send %s yet (%s); will retry", task.key, exc)
        return pending.future

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.poll_interval_s + 15)
        with self._lock:
            leftover, self._pending = list(self._pending.values()), {}
        ids = [cid for p in leftover for cid in p.celery_ids]
        for p in leftover:
            p.future.cancel()
        try:
            if ids:
                self._app.control.revoke(ids)  # queued copies are dropped by the workers
            self._ledger.r.delete(self._marker, self._notices)
        except (*_OUTAGE, redis.RedisError):
            pass
        self._ledger.r.close()
        self._app.close()

    def __enter__(self) -> CeleryExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- sending ----------------------------------------------------------------
    def _send(self, pending: _Pending) -> None:
        with self._send_lock:
            if pending.sent:
                return
            message = self._app.send_task(
                "devicefit.evaluate",
                kwargs={"task": pending.task.model_dump(mode="json"), "scope": self.id, "notify": self._notices},
                queue=pending.queue, retry=True, retry_policy=_SEND_RETRY)
            pending.celery_ids.append(message.id)
            pending.sent = True
            self.stats["sent"] += 1

    def _send_unsent(self) -> None:
        with self._lock:
            unsent = [p for p in self._pending.values() if not p.sent]
        for p in unsent:
            self._send(p)

    # -- the background loop ------------------------------------------------------
    def _loop(self) -> None:
        outage_since: float | None = None
        while not self._stop.is_set():
            try:
                self._check_for_data_loss()
                self._send_unsent()
                self._collect()
                self._wait_for_notice()
                if outage_since is not None:
                    log.warning("broker back after %.1f s", time.monotonic() - outage_since)
                    outage_since = None
            except _OUTAGE as exc:
                if outage_since is None:
                    outage_since = time.monotonic()
                    log.warning("broker unreachable (%s); waiting for it", exc)
                self._stop.wait(0.5)
            except Exception as exc:  # a bug here must fail the search, not hang it
                log.exception("CeleryExecutor loop crashed")
                self._fail_all(EvaluationFailed(f"the Celery executor stopped: {type(exc).__name__}: {exc}"))
                return

    def _fail_all(self, exc: Exception) -> None:
        with self._lock:
            leftover, self._pending = list(self._pending.values()), {}
        for p in leftover:
            try:
                p.future.set_exception(exc)
            except InvalidStateError:
                pass

    def _check_for_data_loss(self) -> None:
        """Our marker key vanished: Redis restarted without its data, and with it every queued message."""
        pipe = self._ledger.r.pipeline()
        pipe.exists(self._marker)
        pipe.set(self._marker, 1, ex=3600)
        existed = pipe.execute()[0]
        if not existed:
            with self._lock:
                for p in self._pending.values():
                    p.sent = False
                n = len(self._pending)
            self.stats["redis_data_lost"] += 1
            log.warning("Redis lost its data (restarted?); re-submitting %d unfinished evaluation(s)", n)

    def _collect(self) -> None:
        with self._lock:
            cancelled = [self._pending.pop(k) for k, p in list(self._pending.items()) if p.future.cancelled()]
            keys = [k for k, p in self._pending.items() if p.sent]
        if cancelled:  # the engine stopped waiting for these: drop their queued messages
            self._app.control.revoke([cid for p in cancelled for cid in p.celery_ids])
        for key, (outcome, claimed, started) in self._ledger.snapshot(keys, scope=self.id).items():
            with self._lock:
                pending = self._pending.get(key)
            if pending is None:
                continue
            if outcome is not None:
                self._resolve(key, pending, outcome)
            elif started and not claimed and started not in pending.lost_runs_handled:
                # written result and dropped claim come in that order, so this run died mid-way
                log.warning("%s: the run %s stopped heartbeating (worker killed?); re-submitting", key, started)
                pending.lost_runs_handled.add(started)
                pending.sent = False
                self.stats["resubmitted_lost_run"] += 1

    def _resolve(self, key: str, pending: _Pending, outcome: dict[str, Any]) -> None:
        with self._lock:
            self._pending.pop(key, None)
        try:
            if outcome.get("ok"):
                pending.future.set_result(EvalResult.model_validate(outcome["result"]))
                self.stats["completed"] += 1
            else:
                pending.future.set_exception(_error_of(outcome))
                self.stats["failed"] += 1
        except InvalidStateError:
            pass  # cancelled by the engine meanwhile

    def _wait_for_notice(self) -> None:
        """Block until a worker says a key is done (or the poll interval passes)."""
        got = self._ledger.r.blpop([self._notices], timeout=self.poll_interval_s)
        if got is not None:
            self._ledger.r.delete(self._notices)  # one notice is enough: _collect reads every pending key

    def _warn_if_unserved(self, queue: str) -> None:
        """A measurement queue nobody consumes would leave the search waiting silently."""
        try:
            replies = self._app.control.inspect(timeout=2.0).active_queues() or {}
        except _OUTAGE:
            return
        if not any(q.get("name") == queue for queues in replies.values() for q in queues):
            device = queue.rsplit(".", 1)[-1]
            log.warning("no worker consumes %s yet: measured candidates wait until one starts on the device "
                        "(search-cli worker --device %s --broker %s)", queue, device, self.url)

    def _discover(self, timeout_s: float) -> int:
        """Evaluation processes listening now, plus one queued task so no worker waits for the next submit.

        Only workers that consume the general queue count: a search runner's threads evaluate nothing.
        """
        try:
            inspect = self._app.control.inspect(timeout=timeout_s)
            queues = inspect.active_queues() or {}
            stats = (inspect.stats() or {}) if queues else {}
        except _OUTAGE:
            queues, stats = {}, {}
        evaluators = {name for name, qs in queues.items() if any(q.get("name") == GENERAL for q in qs)}
        processes = sum(int(s.get("pool", {}).get("max-concurrency", 1)) for name, s in stats.items()
                        if name in evaluators)
        if not processes:
            log.warning("no Celery worker serving %s answered on %s; evaluations wait in the queue until one "
                        "starts (search-cli worker --broker %s)", GENERAL, self.url, self.url)
        return max(1, processes) + 1


def _error_of(outcome: dict[str, Any]) -> Exception:
    message = f"{outcome.get('error')} (on {outcome.get('worker')})"
    if outcome.get("user_error"):
        cls = getattr(search.errors, str(outcome.get("error_type")), None)
        if isinstance(cls, type) and issubclass(cls, DeviceFitError):
            return cls(outcome.get("error"))
        return DeviceFitError(outcome.get("error"))
    return EvaluationFailed(f"{outcome.get('error_type')}: {message}")
