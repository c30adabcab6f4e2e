"""Run one evaluation at most once to completion, however often its message arrives.

A message can arrive more than once: Celery redelivers it when its worker
process died (acks_late + reject_on_worker_lost), Redis hands it out again
after the visibility timeout, and the executor re-submits after a crash or a
Redis restart. Every copy goes through here: a finished evaluation returns its
stored outcome, a running one is waited for, a dead one is taken over.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from search.errors import DeviceFitError
from search.executor import EvalResult, EvalTask
from workers.ledger import Ledger, max_attempts, new_token, scoped

log = logging.getLogger(__name__)
WAIT_POLL_S = 0.5


def failure(exc: BaseException | str, worker: str, *, user_error: bool) -> dict[str, Any]:
    message = exc if isinstance(exc, str) else str(exc)
    kind = "RuntimeError" if isinstance(exc, str) else type(exc).__name__
    return {"ok": False, "error": message, "error_type": kind, "user_error": user_error, "worker": worker}


def run_once(ledger: Ledger, task: EvalTask, evaluate: Callable[[EvalTask], EvalResult], *,
             worker: str, scope: str | None = None, notify: str | None = None) -> dict[str, Any]:
    """The outcome of ``evaluate(task)``: {"ok": True, "result": EvalResult JSON} or {"ok": False, ...}.

    scope: the submitting executor's id; the ledger key is ``scope/study:trial:stage``.
    """
    key, token = scoped(scope, task.key), new_token(worker)
    while True:
        done = ledger.result(key)
        if done is not None:  # a duplicate delivery of a finished evaluation
            if notify:
                ledger.notify(notify, key)
            log.info("%s already evaluated (%s); not running it again", key, done.get("worker"))
            return done
        attempt = ledger.claim(key, token)
        if attempt:
            break
        time.sleep(WAIT_POLL_S)  # another copy is running: wait for its result or for its claim to lapse

    if attempt > max_attempts():
        outcome = failure(f"evaluating {key} killed its worker {attempt - 1} times; giving up on this candidate",
                          worker, user_error=False)
        ledger.finish(key, token, outcome, notify)
        return outcome
    if attempt > 1:
        log.warning("%s: attempt %d (an earlier run was lost)", key, attempt)
    with ledger.heartbeat(key, token):
        try:
            result = evaluate(task)
            outcome = {"ok": True, "worker": worker, "attempt": attempt,
                       "result": result.model_copy(update={"worker": worker}).model_dump(mode="json")}
        except DeviceFitError as exc:
            outcome = failure(exc, worker, user_error=True)
        except Exception as exc:  # noqa: BLE001 - reported to the engine, which fails the trial
            log.error("evaluating %s failed:\n%s", key, traceback.format_exc())
            outcome = failure(exc, worker, user_error=False)
    ledger.finish(key, token, outcome, notify)
    return outcome
