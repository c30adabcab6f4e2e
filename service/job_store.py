"""Jobs in the database: create, read, list a page, change status. No business logic beyond that."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from search.errors import DeviceFitError
from search.spec import SearchSpec
from service.tables import FINISHED, QUEUED, Job, utcnow

_JOB_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")


class JobNotFound(DeviceFitError):
    """No job has this id (answered 404)."""


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


class JobStore:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def create(self, spec: SearchSpec, *, job_id: str, storage_url: str) -> Job:
        job = Job(id=job_id, spec=spec.model_dump_json(), status=QUEUED, study_name=spec.study_name or job_id,
                  storage_url=storage_url, created_at=utcnow(), updated_at=utcnow())
        with self.sessions.begin() as s:
            s.add(job)
        return job

    def get(self, job_id: str) -> Job:
        if not _JOB_ID.fullmatch(job_id):  # never send odd text (NUL bytes, ...) to the database
            raise JobNotFound(f"no search with id {job_id!r}; GET /search lists them")
        with self.sessions() as s:
            job = s.get(Job, job_id)
        if job is None:
            raise JobNotFound(f"no search with id {job_id!r}; GET /search lists them")
        return job

    def page(self, *, offset: int, limit: int, status: str | None = None) -> tuple[list[Job], int]:
        query = select(Job)
        count = select(func.count()).select_from(Job)
        if status:
            query, count = query.where(Job.status == status), count.where(Job.status == status)
        with self.sessions() as s:
            total = s.scalar(count) or 0
            rows = s.scalars(query.order_by(Job.created_at.desc(), Job.id).offset(offset).limit(limit)).all()
        return list(rows), total

    def update(self, job_id: str, **fields) -> Job:
        """Set fields; a finished job keeps its final status (a late worker report cannot revive it)."""
        with self.sessions.begin() as s:
            job = s.get(Job, job_id, with_for_update=True)
            if job is None:
                raise JobNotFound(f"no search with id {job_id!r}")
            if "status" in fields and job.status in FINISHED and fields["status"] != job.status:
                fields.pop("status")
                fields.pop("error", None)
            for key, value in fields.items():
                setattr(job, key, value)
            job.updated_at = utcnow()
        return job
