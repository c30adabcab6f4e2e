"""Sending a job's search to the Celery workers, asking how it goes, and cancelling it.

The service only knows the task by name (settings.search_task), so it needs
none of the workers' code, and celery is imported only when first used.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from service.settings import Settings
from service.tables import CANCELLED, DONE, FAILED, QUEUED, RUNNING


@dataclass
class TaskState:
    status: str  # one of the job statuses
    error: str | None = None


# Celery's task states -> job statuses (PENDING also means "unknown to the backend")
_STATES = {"PENDING": QUEUED, "RECEIVED": QUEUED, "STARTED": RUNNING, "RETRY": RUNNING, "PROGRESS": RUNNING,
           "SUCCESS": DONE, "FAILURE": FAILED, "REVOKED": CANCELLED}


class Dispatcher:
    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def celery(self) -> Any:
        from celery import Celery

        app = Celery("devicefit-service", broker=self.settings.broker_url, backend=self.settings.celery_backend)
        # a request must not wait long on a broker that is down: a couple of quick retries, then the job fails
        quick = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
        app.conf.update(broker_connection_retry_on_startup=False, broker_connection_timeout=3,
                        task_publish_retry_policy=quick,
                        result_backend_transport_options={"retry_policy": {**quick, "timeout": 3.0}},
                        task_serializer="json", result_serializer="json", accept_content=["json"])
        return app

    def submit(self, job_id: str, spec: dict[str, Any]) -> str | None:
        """Queue the job's search; returns the Celery task id (None when dispatch is off)."""
        if not self.settings.dispatch:
            return None
        # the spec carries the study name and storage, which is all the task needs to find the trials
        result = self.celery.send_task(self.settings.search_task, kwargs={"spec": spec},
                                       queue=self.settings.search_queue, task_id=f"job-{job_id}")
        return result.id

    def export(self, spec: dict[str, Any], trial: int, target: str, fmt: str = "devicefit") -> None:
        """Ask a worker to build a trial's download at `target` in format `fmt` (service/archives.py)."""
        self.celery.send_task(self.settings.export_task,
                              kwargs={"spec": spec, "trial": trial, "target": target, "fmt": fmt},
                              queue=self.settings.export_queue)

    def state(self, task_id: str) -> TaskState:
        result = self.celery.AsyncResult(task_id)
        status = _STATES.get(result.state, RUNNING)
        error = None
        if status == FAILED:
            error = _one_line(result.result)
        return TaskState(status=status, error=error)

    def cancel(self, task_id: str) -> None:
        # searches run on worker threads, which cannot be killed: the runner sees the revoke and stops at
        # its next finished trial (workers/tasks.py); a queued copy is dropped. The trials so far stay.
        self.celery.control.revoke(task_id)

    def serves(self, queue: str, timeout_s: float = 1.0) -> bool:
        """Whether a live worker consumes this queue now."""
        replies = self.celery.control.inspect(timeout=timeout_s).active_queues() or {}
        return any(q.get("name") == queue for queues in replies.values() for q in queues)


def _one_line(exc: Any) -> str:
    text = str(exc) or type(exc).__name__
    name = type(exc).__name__
    first = text.strip().splitlines()[0] if text.strip() else name
    return first if name in ("DeviceFitError", "SpecError", "ModelError", "DeviceError", "RecipeError",
                             "InfeasibleError") else f"{name}: {first}"
