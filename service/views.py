"""Job rows + Optuna trials -> the API's response bodies (also what the HTML pages render)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from search.spec import SearchSpec
from service.schemas import CandidateDetail, JobDetail, JobSummary, Links, Progress
from service.tables import QUEUED, Job


def links(job_id: str) -> Links:
    return Links(self=f"/search/{job_id}", page=f"/searches/{job_id}",
                 candidates=f"/search/{job_id}/candidates/{{k}}", cancel=f"/search/{job_id}")


def public_spec(job: Job) -> SearchSpec:
    """The spec as run, without the storage URL (it may hold database credentials)."""
    spec = SearchSpec.model_validate_json(job.spec)
    return spec.model_copy(update={"storage": None})


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite forgets the zone


def job_summary(job: Job) -> JobSummary:
    spec = SearchSpec.model_validate_json(job.spec)
    return JobSummary(id=job.id, status=job.status, model=spec.model, device=spec.device, workload=spec.workload,
                      budget=spec.budget.model_dump(), trials=spec.trials, created_at=_utc(job.created_at),
                      updated_at=_utc(job.updated_at), error=job.error, links=links(job.id))


def job_detail(app: Any, job: Job) -> JobDetail:
    spec = SearchSpec.model_validate_json(job.spec)
    view = app.studies.view(job, spec)
    if view.progress.completed and job.status == QUEUED:
        job = app.jobs.mark_running(job)
    summary = job_summary(job)
    return JobDetail(**summary.model_dump(), spec=public_spec(job), progress=view.progress, metric=view.metric,
                     higher_is_better=view.higher_is_better, budget_ms=spec.budget.latency_ms,
                     budget_bytes=spec.budget.memory_bytes, front=view.front)


def candidate_detail(app: Any, job: Job, k: int) -> CandidateDetail:
    from service.breakdown import layer_breakdown

    spec = SearchSpec.model_validate_json(job.spec)
    view = app.studies.view(job, spec)
    entry = front_entry(job, view, k)
    parts = layer_breakdown(spec, entry.recipe)
    return CandidateDetail(**dict(entry), search_id=job.id, metrics=view.metrics[k],
                           **parts, download=download_url(job.id, entry.trial))


def front_entry(job: Job, view: Any, k: int) -> Any:
    """The front's candidate k of a study view, or NotFound saying which indices exist."""
    from service.errors import NotFound

    if not view.front:
        raise NotFound(f"search {job.id} has no candidates yet (status {job.status})")
    if not 0 <= k < len(view.front):
        raise NotFound(f"candidate {k} does not exist: search {job.id} has candidates 0..{len(view.front) - 1}")
    return view.front[k]


def download_url(job_id: str, trial: int) -> str:
    return f"/search/{job_id}/trials/{trial}/download"


def progress_of(completed: int, total: int, **counts: int) -> Progress:
    return Progress(completed=completed, total=total, **counts)
