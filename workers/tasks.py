"""Celery tasks: evaluate one candidate; run a whole search.

Messages carry the EvalTask / SearchSpec as JSON (ids and recipes, never
weights). search.evaluate_task is imported inside the task so the worker's
parent process never imports torch (see worker_init.py).
"""

from __future__ import annotations

import logging
from typing import Any

from search.executor import EvalResult, EvalTask
from workers.celery_app import app
from workers.ledger import Ledger, redis_client
from workers.run_once import run_once

log = logging.getLogger(__name__)
_ledgers: dict[str, Ledger] = {}


def ledger_for(url: str) -> Ledger:
    """One Redis client per process and broker (created lazily, i.e. after the fork)."""
    if url not in _ledgers:
        _ledgers[url] = Ledger(redis_client(url))
    return _ledgers[url]


def _evaluate(task: EvalTask) -> EvalResult:
    from search.evaluate_task import evaluate

    return evaluate(task)


@app.task(name="devicefit.evaluate", bind=True)
def evaluate_candidate(self, task: dict[str, Any], scope: str | None = None,
                       notify: str | None = None) -> dict[str, Any]:
    """Evaluate one candidate, idempotently (keyed by scope/study:trial:stage)."""
    eval_task = EvalTask.model_validate(task)
    worker = self.request.hostname or "worker"
    return run_once(ledger_for(self.app.conf.broker_url), eval_task, _evaluate, worker=worker, scope=scope,
                    notify=notify)


@app.task(name="devicefit.run_search", bind=True)
def run_search_task(self, spec: dict[str, Any], max_in_flight: int | None = None) -> dict[str, Any]:
    """Run a whole search whose candidates are evaluated by other Celery workers.

    A redelivered copy (its worker died) resumes the same Optuna study: the
    spec's study name and storage identify it.
    """
    from search.engine import run_search
    from search.spec import parse_spec
    from workers.executor import CeleryExecutor

    search_spec = parse_spec(spec)

    def progress(*args: Any, **kwargs: Any) -> None:
        self.update_state(state="PROGRESS", meta={"args": [str(a) for a in args]})

    executor = CeleryExecutor(self.app.conf.broker_url, max_in_flight=max_in_flight)
    try:
        result = run_search(search_spec, executor=executor, progress=progress)
    finally:
        executor.shutdown()
    return _summary(result)


def _summary(result: Any) -> dict[str, Any]:
    dump = getattr(result, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return {"result": str(result)}
