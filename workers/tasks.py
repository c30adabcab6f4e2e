"""Celery tasks: evaluate one candidate; run a whole search.

Messages carry the EvalTask / SearchSpec as JSON (ids and recipes, never
weights). search.evaluate_task is imported inside the task so the worker's
parent process never imports torch (see worker_init.py).
"""

from __future__ import annotations

import dataclasses
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


# ignore_result: the outcome travels through the ledger (workers/ledger.py), not the result backend
@app.task(name="devicefit.evaluate", bind=True, ignore_result=True)
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

    A redelivered copy (its worker died) resumes the study when the spec names
    it (study_name): the finished trials are kept, the lost ones re-run.
    """
    from search.engine import run_search
    from search.spec import parse_spec
    from workers.executor import CeleryExecutor

    search_spec = parse_spec(spec)

    def progress(p: Any) -> None:  # engine.SearchProgress after every finished trial
        self.update_state(state="PROGRESS", meta=dataclasses.asdict(p))

    executor = CeleryExecutor(self.app.conf.broker_url, max_in_flight=max_in_flight)
    try:
        result = run_search(search_spec, executor=executor, progress=progress, resume=_study_exists(search_spec))
    finally:
        executor.shutdown()
    return result.to_json()


def _study_exists(spec: Any) -> bool:
    if not spec.study_name:
        return False
    import optuna

    from search.study import make_storage, storage_url

    return spec.study_name in optuna.get_all_study_names(make_storage(storage_url(spec)))
