"""Celery tasks: evaluate one candidate; run a whole search.

Messages carry the EvalTask / SearchSpec as JSON (ids and recipes, never
weights). search.engine is imported inside the task so the worker's
parent process never imports torch (see worker_init.py).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from search.executor import EvalResult, EvalTask
from workers.celery_app import app
from workers.ledger import Ledger, redis_client
from workers.run_once import run_once

log = logging.getLogger(__name__)
_ledgers: dict[str, Ledger] = {}
_storage_lock = threading.Lock()


def ledger_for(url: str) -> Ledger:
    """One Redis client per process and broker (created lazily, i.e. after the fork)."""
    if url not in _ledgers:
        _ledgers[url] = Ledger(redis_client(url))
    return _ledgers[url]


def _evaluate(task: EvalTask) -> EvalResult:
    from search.engine import evaluate_candidate

    return evaluate_candidate(task)


# ignore_result: the outcome travels through the ledger (workers/ledger.py), not the result backend
@app.task(name="devicefit.evaluate", bind=True, ignore_result=True)
def evaluate_candidate(self, task: dict[str, Any], scope: str | None = None,
                       notify: str | None = None) -> dict[str, Any]:
    """Evaluate one candidate, idempotently (keyed by scope/study:trial:stage)."""
    eval_task = EvalTask.model_validate(task)
    worker = self.request.hostname or "worker"
    return run_once(ledger_for(self.app.conf.broker_url), eval_task, _evaluate, worker=worker, scope=scope,
                    notify=notify)


class SearchCancelled(Exception):
    """The service revoked this search's task: the engine stops at its next finished trial."""


class LeaseLost(Exception):
    """Another runner took this search's lease (this one was cut off too long): this engine stops."""


# track_started off: a dropped duplicate must not overwrite the stored state of the search it copies
@app.task(name="devicefit.run_search", bind=True, track_started=False)
def run_search_task(self, spec: dict[str, Any], max_in_flight: int | None = None) -> dict[str, Any]:
    """Run a whole search whose candidates are evaluated by other Celery workers.

    Exactly one copy runs at a time (workers/search_lease.py): a redelivered or re-sent copy is
    dropped while the lease is held, and one that comes after its runner died resumes the study
    (spec.study_name): the finished trials are kept, the lost ones re-run.
    """
    from celery.exceptions import Ignore
    from celery.worker import state as worker_state

    from search.engine import run_search
    from search.spec import parse_spec
    from workers.executor import CeleryExecutor
    from workers.queues import SEARCHES
    from workers.search_lease import LeaseHeld, SearchLease

    search_spec = parse_spec(spec)
    task_id = self.request.id
    queue = (self.request.delivery_info or {}).get("routing_key") or SEARCHES
    lease = SearchLease(ledger_for(self.app.conf.broker_url).r, search_spec.study_name or f"task-{task_id}",
                        self.request.hostname or "runner")

    def cancelled() -> bool:  # asked by the engine about every second: a cancel is heard mid-evaluation
        return task_id in worker_state.revoked

    def progress(p: Any) -> None:  # search.progress.Progress after every finished trial
        if lease.lost.is_set():
            raise LeaseLost(f"search {lease.study}: another runner holds its lease")
        self.update_state(state="PROGRESS", meta=p.model_dump(mode="json"))

    try:
        with lease.held(task_id, {"spec": spec, "max_in_flight": max_in_flight}, queue):
            self.update_state(state="STARTED")
            executor = CeleryExecutor(self.app.conf.broker_url, max_in_flight=max_in_flight)
            try:
                result = run_search(search_spec, executor=executor, progress=progress,
                                    resume=_study_exists(search_spec), should_stop=cancelled)
            finally:
                executor.shutdown()
            if result.stopped_by == "stopped":
                raise SearchCancelled(f"search {lease.study} was cancelled")
    except LeaseHeld as exc:
        log.warning("not running this copy of search %s: %s", lease.study, exc)
        raise Ignore() from None
    except LeaseLost as exc:
        log.error("%s", exc)
        raise Ignore() from None
    except SearchCancelled:
        lease.finish()
        self.backend.mark_as_revoked(task_id, "cancelled", request=self.request)
        raise Ignore() from None
    except Exception:
        lease.finish()  # a search that failed is over: the watchdog must not resume it
        raise
    lease.finish()
    return result.to_json()


def _study_exists(spec: Any) -> bool:
    """Whether the spec's study is already in its storage (so this run resumes it).

    Opening a storage creates its tables; searches starting at once on the runner's threads would
    race to create them, so they open it one at a time.
    """
    import optuna

    from search.study import make_storage, storage_url

    with _storage_lock:
        storage = make_storage(storage_url(spec))
    return bool(spec.study_name) and spec.study_name in optuna.get_all_study_names(storage)


@app.task(name="devicefit.export_archive", bind=True, ignore_result=True)
def export_archive_task(self, spec: dict[str, Any], trial: int, target: str, fmt: str = "devicefit") -> str | None:
    """Build the download of one trial (workers/artifacts.py) at `target`, unless it is there already;
    a candidate the format cannot express leaves the reason in `target`.error for the service to answer."""
    from pathlib import Path

    from search.errors import DeviceFitError
    from search.spec import parse_spec
    from workers.artifacts import build_archive

    path = Path(target)
    if path.is_file():  # a repeated request while the first build ran
        return target
    log.info("building the download of trial %d of %s", trial, spec.get("study_name"))
    try:
        return str(build_archive(parse_spec(spec), trial, path, fmt))
    except DeviceFitError as exc:  # e.g. a format that cannot express the candidate: the service tells the user
        log.warning("cannot build the download of trial %d as %s: %s", trial, fmt, exc)
        path.with_name(path.name + ".error").write_text(str(exc) + "\n")
        return None


# on the general queue, in an evaluation process (never a search runner's thread: searches keep running);
# bounded by the service's limits on prompt and new tokens, and by this time limit
@app.task(name="devicefit.generate", bind=True, soft_time_limit=300, time_limit=330)
def generate_task(self, spec: dict[str, Any], trial: int, prompt: str, max_new_tokens: int = 64,
                  record: dict[str, Any] | None = None) -> dict[str, Any]:
    """Greedy continuation of `prompt` by one trial's candidate (workers/generation.py): the text and its
    speed, or {"error": reason} for input the candidate cannot take (the service shows the reason).
    `record`: the trial's candidate record, when the sender read it already (else read from the study)."""
    from search.errors import DeviceFitError
    from search.spec import parse_spec
    from workers.generation import generate_for_trial

    try:
        return generate_for_trial(parse_spec(spec), trial, prompt, max_new_tokens, record)
    except DeviceFitError as exc:
        log.warning("cannot generate with trial %d of %s: %s", trial, spec.get("study_name"), exc)
        return {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__, "trial": trial}
