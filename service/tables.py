"""The jobs table: one row per submitted search. Trials live in the Optuna storage it points at."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JOBS_TABLE = "devicefit_jobs"

# queued -> running -> done | failed ; queued/running -> cancelled
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = JOBS_TABLE

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    spec: Mapped[str] = mapped_column(Text)  # the SearchSpec as JSON, as it is run
    status: Mapped[str] = mapped_column(String(16), index=True, default=QUEUED)
    study_name: Mapped[str] = mapped_column(String(200))
    storage_url: Mapped[str] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
