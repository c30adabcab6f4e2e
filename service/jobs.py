"""The life of a job: accept a SearchSpec, send it to the workers, follow it, cancel it.

The job row holds the status the service last saw; while a job is unfinished,
reading it asks the task backend (Celery's result store) for news first.
"""

from __future__ import annotations

import logging
import threading
import time

from search.errors import InfeasibleError, ModelError, SpecError
from search.spec import SearchSpec, parse_spec
from service.admission import check_eval_text, check_limits, check_text
from service.dispatch import Dispatcher
from service.job_store import JobStore, new_job_id
from service.security import check_model_ref
from service.settings import Settings
from service.tables import CANCELLED, FAILED, FINISHED, QUEUED, RUNNING, Job

log = logging.getLogger("devicefit.service")

# fields of SearchSpec the server decides: where the trials go and what the study is called
SERVER_FIELDS = ("storage", "study_name")
REFRESH_TTL_S = 2.0


class Jobs:
    def __init__(self, settings: Settings, store: JobStore, dispatcher: Dispatcher):
        self.settings = settings
        self.store = store
        self.dispatcher = dispatcher
        self._checked: dict[str, float] = {}  # job id -> when the backend was last asked about it
        self._lock = threading.Lock()

    def admit(self, spec: SearchSpec) -> SearchSpec:
        """The spec as the server will run it, or a DeviceFitError naming what is refused."""
        check_text(spec)  # before anything uses a string: a NUL byte breaks file paths, a surrogate storage
        for name in SERVER_FIELDS:
            if getattr(spec, name) is not None:
                raise SpecError(f"{name}: chosen by the server for each job; leave it out")
        spec = check_limits(spec, self.settings.limits)
        model = check_model_ref(spec.model, self.settings)
        _known_device(spec.device)
        spec = spec.model_copy(update={"model": model})
        _reachable(spec)
        check_eval_text(spec)
        if spec.measure and self.settings.dispatch:
            self._check_measured(spec.device)
        return spec

    def _check_measured(self, device: str) -> None:
        """`measure` needs a worker on the device: without one the search would wait forever."""
        queue = self.settings.device_queue_prefix + device
        try:
            served = self.dispatcher.serves(queue)
        except Exception:  # noqa: BLE001 - the broker is down: submit() fails the job with that reason
            return
        if not served:
            raise SpecError(f"measure: no worker measures on {device} (nobody consumes {queue}); start "
                            f"`search-cli worker --device {device}` on that device, or leave measure false")

    def submit(self, spec: SearchSpec) -> Job:
        spec = self.admit(spec)
        job_id = new_job_id()
        storage = self.settings.optuna_storage
        spec = spec.model_copy(update={"study_name": f"job-{job_id}", "storage": storage})
        job = self.store.create(spec, job_id=job_id, storage_url=storage)
        try:
            task_id = self.dispatcher.submit(job_id, spec.model_dump(mode="json"))
        except Exception as exc:  # noqa: BLE001 - the broker is down: the job fails, the request does not
            log.warning("could not queue job %s: %s", job_id, exc)
            broker = self.settings.broker_url.split("@")[-1]
            return self.store.update(job_id, status=FAILED, error=f"could not reach the task queue at {broker} "
                                                                    f"({type(exc).__name__}); is Redis running?")
        return self.store.update(job_id, task_id=task_id) if task_id else job

    def get(self, job_id: str) -> Job:
        return self.refresh(self.store.get(job_id))

    def refresh(self, job: Job) -> Job:
        """Ask the task backend how an unfinished job goes and record any change.

        At most once per REFRESH_TTL_S per job: a page listing 50 running jobs, polled by many
        clients, must not ask the backend 50 times per request.
        """
        if job.status in FINISHED or not job.task_id or not self.settings.dispatch:
            return job
        now = time.monotonic()
        with self._lock:
            if now - self._checked.get(job.id, -REFRESH_TTL_S) < REFRESH_TTL_S:
                return job
            self._checked[job.id] = now
            if len(self._checked) > 10_000:  # forget the oldest half (finished jobs are never asked again)
                for key in sorted(self._checked, key=self._checked.get)[:5_000]:
                    del self._checked[key]
        try:
            state = self.dispatcher.state(job.task_id)
        except Exception:  # noqa: BLE001 - backend unreachable: report what we last knew
            log.warning("task backend unreachable while reading job %s", job.id)
            return job
        if state.status == QUEUED or (state.status == job.status and state.error == job.error):
            return job
        return self.store.update(job.id, status=state.status, error=state.error)

    def mark_running(self, job: Job) -> Job:
        """Trials appeared before the backend said 'started' (e.g. no task tracking)."""
        return self.store.update(job.id, status=RUNNING) if job.status == QUEUED else job

    def cancel(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job.status in FINISHED:
            return job
        if job.task_id and self.settings.dispatch:
            try:
                self.dispatcher.cancel(job.task_id)
            except Exception:  # noqa: BLE001 - still mark it: the worker checks nothing else
                log.exception("could not revoke task of job %s", job_id)
        return self.store.update(job_id, status=CANCELLED, error="cancelled by request")

    @staticmethod
    def spec_of(job: Job) -> SearchSpec:
        return parse_spec(job.spec)


def _reachable(spec: SearchSpec) -> None:
    """A budget no recipe of the space can meet is refused now, not after a worker picked it up."""
    from search.engine import check_budget
    from service.breakdown import graph_of

    try:
        graph = graph_of(spec.model)
    except ModelError as exc:
        raise ModelError(f"model: {exc}") from None
    try:
        check_budget(spec, graph)
    except InfeasibleError as exc:
        raise InfeasibleError(f"budget: {exc}") from None


def _known_device(name: str) -> None:
    """Only the bundled profiles: a profile path would let a request read files on the server."""
    from search.errors import DeviceError
    from search.hw_profiles.profile import list_profiles

    known = list_profiles()
    if name not in known:
        raise DeviceError(f"device: unknown device {name!r}; known devices: {', '.join(known)} (GET /devices)")
