"""Reading a job's trials straight from its Optuna study (never copied into the jobs table).

Finished trials never change, so each job keeps what it already folded in: the
storage is read through the service's own read model (trial_log.py, Optuna's
public API: only unfinished and new trials are fetched again), each completed trial becomes a Candidate once, and the front
is updated from the previous front plus the new candidates (a point dominated
once stays dominated). A job's view is reused for VIEW_TTL_S while it runs and
for good once it finished.
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
from service.trial_log import TrialLog
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


@dataclass
class _Folded:
    """What one job's completed trials added up to so far."""

    seen: set[int] = field(default_factory=set)
    completed: int = 0
    infeasible: int = 0
    feasible: int = 0
    full: int = 0
    front: list[Any] = field(default_factory=list)  # search.candidates.Candidate


class Studies:
    def __init__(self) -> None:
        self._storages: dict[str, Any] = {}
        self._cache: OrderedDict[str, tuple[tuple, float, StudyView]] = OrderedDict()
        self._folded: OrderedDict[str, _Folded] = OrderedDict()
        self._logs: OrderedDict[str, TrialLog] = OrderedDict()  # job id -> its trials read so far
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
            self._remember(self._cache, job.id, (key, time.monotonic(), view))
            return view

    def finished_trial(self, job: Job, spec: SearchSpec, number: int) -> Any | None:
        """Trial `number` of the job's study if it finished as a candidate (COMPLETE), else None."""
        from optuna.trial import TrialState

        self.view(job, spec)
        log = self._logs.get(job.id)
        trial = log.finished.get(number) if log is not None else None
        return trial if trial is not None and trial.state == TrialState.COMPLETE else None

    def _fresh(self, job: Job, key: tuple) -> StudyView | None:
        hit = self._cache.get(job.id)
        if hit and hit[0] == key and (job.status in FINISHED or time.monotonic() - hit[1] < VIEW_TTL_S):
            return hit[2]
        return None

    def _job_lock(self, job_id: str) -> threading.Lock:
        with self._lock:
            return self._job_locks.setdefault(job_id, threading.Lock())

    def _remember(self, table: OrderedDict, key: str, value: Any) -> None:
        with self._lock:
            table[key] = value
            table.move_to_end(key)
            while len(table) > CACHED_JOBS:
                table.popitem(last=False)

    def _read(self, job: Job, spec: SearchSpec) -> StudyView:
        from search.evaluators.quality import primary_metric

        metric = primary_metric(graph_of(spec.model))
        view = StudyView(progress=progress_of(0, spec.trials), metric=metric[0], higher_is_better=metric[1] == "max")
        trials = self._trials(job)
        if trials is not None:
            folded = self._folded.get(job.id) or _Folded()
            fold(folded, trials, spec, metric)
            self._remember(self._folded, job.id, folded)
            fill_view(view, folded, trials, spec, metric)
        if job.status in FINISHED:  # trials a cancelled search left open will never finish
            view.progress = view.progress.model_copy(update={"running": 0})
        return view

    def _trials(self, job: Job) -> list[Any] | None:
        import optuna

        storage = self.storage(job.storage_url)
        log = self._logs.get(job.id) or TrialLog()
        if log.study_id is None:  # a study's id never changes: asked once
            try:
                log.study_id = storage.get_study_id_from_name(job.study_name)
            except KeyError:
                return None  # the worker has not created the study yet
            except optuna.exceptions.OptunaError:
                return None
        trials = log.update(storage, log.study_id)
        self._remember(self._logs, job.id, log)
        return trials


def fold(folded: _Folded, trials: list[Any], spec: SearchSpec, metric: tuple[str, str]) -> None:
    """Add the trials completed since the last fold to the counts and the front."""
    from optuna.trial import TrialState

    from search.candidates import Candidate, front_of

    new = []
    for trial in trials:
        if trial.state != TrialState.COMPLETE or trial.number in folded.seen:
            continue
        folded.seen.add(trial.number)
        candidate = Candidate.from_trial(trial, metric)
        if candidate is None:
            continue
        new.append(candidate)
        folded.completed += 1
        folded.infeasible += not candidate.feasible
        folded.feasible += candidate.feasible and candidate.stage == "full"
        folded.full += candidate.stage == "full"
    if new:
        folded.front = front_of(folded.front + new, spec.objectives, metric)


def fill_view(view: StudyView, folded: _Folded, trials: list[Any], spec: SearchSpec,
              metric: tuple[str, str]) -> None:
    """Progress counts and the front (numbered as `search-cli show` numbers it)."""
    from optuna.trial import TrialState

    view.progress = progress_of(
        folded.completed, spec.trials, running=sum(t.state == TrialState.RUNNING for t in trials),
        failed=sum(t.state == TrialState.FAIL for t in trials), infeasible=folded.infeasible,
        feasible=folded.feasible, full_evaluations=folded.full, front_size=len(folded.front))
    numbers = {c.trial for c in folded.front}
    attrs = {t.number: t.user_attrs for t in trials if t.number in numbers}
    for k, c in enumerate(folded.front):
        view.front.append(CandidateSummary(**dict(c), k=k, metric=metric[0], value=c.quality.get(metric[0])))
        view.metrics.append(_metrics(attrs[c.trial]))


def _metrics(user_attrs: dict[str, Any]) -> dict[str, Any]:
    """Everything the engine recorded on a trial, flat, without the recipe (returned on its own)."""
    from search.candidates import CANDIDATE_ATTR

    attrs = dict(user_attrs)
    record = attrs.pop(CANDIDATE_ATTR, None)
    flat = {**attrs, **(record if isinstance(record, dict) else {})}
    flat.pop("recipe", None)
    return flat
