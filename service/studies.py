"""Reading a job's trials straight from its Optuna study (never copied into the jobs table).

Polling clients ask for the same job many times a second, so a job's view is
cached briefly (VIEW_TTL_S) while it runs and for good once it finished
(keyed by its status and last update).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from search.spec import SearchSpec
from service.breakdown import graph_of
from service.schemas import CandidateSummary, Progress
from service.tables import FINISHED, Job
from service.views import progress_of

VIEW_TTL_S = 0.5
CACHED_JOBS = 256


@dataclass
class StudyView:
    progress: Progress
    metric: str | None = None
    higher_is_better: bool | None = None
    front: list[CandidateSummary] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)


class Studies:
    def __init__(self) -> None:
        self._storages: dict[str, Any] = {}
        self._cache: OrderedDict[str, tuple[tuple, float, StudyView]] = OrderedDict()
        self._lock = threading.Lock()
        self._job_locks: dict[str, threading.Lock] = {}

    def storage(self, url: str) -> Any:
        with self._lock:
            if url not in self._storages:
                from search.study import make_storage

                self._storages[url] = make_storage(url)
            return self._storages[url]

    def view(self, job: Job, spec: SearchSpec) -> StudyView:
        key = (job.status, job.updated_at)
        hit = self._fresh(job, key)
        if hit is not None:
            return hit
        with self._job_lock(job.id):  # many pollers, one reader of the storage
            hit = self._fresh(job, key)
            if hit is not None:
                return hit
            view = self._read(job, spec)
            self._cache[job.id] = (key, time.monotonic(), view)
            self._cache.move_to_end(job.id)
            while len(self._cache) > CACHED_JOBS:
                self._cache.popitem(last=False)
            return view

    def _fresh(self, job: Job, key: tuple) -> StudyView | None:
        hit = self._cache.get(job.id)
        if hit and hit[0] == key and (job.status in FINISHED or time.monotonic() - hit[1] < VIEW_TTL_S):
            return hit[2]
        return None

    def _job_lock(self, job_id: str) -> threading.Lock:
        with self._lock:
            return self._job_locks.setdefault(job_id, threading.Lock())

    def _read(self, job: Job, spec: SearchSpec) -> StudyView:
        from search.evaluators.quality import primary_metric

        metric = primary_metric(graph_of(spec.model))
        trials = self._trials(job)
        view = StudyView(progress=progress_of(0, spec.trials), metric=metric[0], higher_is_better=metric[1] == "max")
        if trials is not None:
            fill_view(view, trials, spec, metric)
        if job.status in FINISHED:  # trials a cancelled search left open will never finish
            view.progress.running = 0
        return view

    def _trials(self, job: Job) -> list[Any] | None:
        import optuna

        storage = self.storage(job.storage_url)
        try:
            study_id = storage.get_study_id_from_name(job.study_name)
        except KeyError:
            return None  # the worker has not created the study yet
        except optuna.exceptions.OptunaError:
            return None
        return storage.get_all_trials(study_id, deepcopy=False)


def fill_view(view: StudyView, trials: list[Any], spec: SearchSpec, metric: tuple[str, str]) -> None:
    """Progress counts and the front (numbered as `search-cli show` numbers it) from the trials."""
    from optuna.trial import TrialState

    from search.candidates import front_of, trial_candidate

    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    candidates = [c for c in (trial_candidate(t, metric) for t in complete) if c is not None]
    view.progress = progress_of(
        len(candidates), spec.trials, running=sum(t.state == TrialState.RUNNING for t in trials),
        failed=sum(t.state == TrialState.FAIL for t in trials), infeasible=sum(not c.feasible for c in candidates),
        feasible=sum(c.feasible and c.stage == "full" for c in candidates),
        full_evaluations=sum(c.stage == "full" for c in candidates))
    by_number = {t.number: t for t in complete}
    for k, c in enumerate(front_of(candidates, spec.objectives, metric)):
        view.front.append(CandidateSummary(
            k=k, trial=c.trial, summary=c.recipe.summary(), recipe=c.recipe, quality=c.quality, metric=metric[0],
            value=c.quality.get(metric[0]), latency_ms=c.latency_ms, memory_bytes=c.memory_bytes,
            feasible=c.feasible))
        view.metrics.append(_jsonable(by_number[c.trial].user_attrs))


def _jsonable(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if k != "recipe"}
