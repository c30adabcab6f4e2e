"""The "try it" box's service side: send a prompt to a worker and read back what the candidate wrote.

A generation is a Celery task (workers/tasks.py, ``devicefit.generate``) on the general queue; its id
names the search and trial it belongs to (``gen-<search>-<trial>-<random>``), and the service marks it RECEIVED in the
result backend before sending it, so an id this service never issued (Celery calls every unknown id
PENDING) is told apart from one that waits for a worker.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

GENERATE_TASK = "devicefit.generate"
GENERATE_QUEUE = "devicefit.general"  # evaluation processes; never a search runner's thread
ISSUED = "RECEIVED"  # the state this service writes before sending (a worker overwrites it)
PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass
class Outcome:
    status: str  # pending | done | failed
    result: dict[str, Any] = field(default_factory=dict)  # the worker's answer when done
    error: str | None = None


def new_task_id(search_id: str, trial: int) -> str:
    return f"gen-{search_id}-{trial}-{secrets.token_hex(8)}"


def trial_of(task_id: str, search_id: str) -> int | None:
    """The trial a generation id of this search names; None when the id is not one of this search's."""
    head, _, rest = task_id.partition(f"gen-{search_id}-")
    trial, _, random = rest.partition("-")
    return int(trial) if not head and trial.isdigit() and random else None


def can_generate(model_ref: str) -> bool:
    """Only causal LMs continue a prompt (read from the model's config; no weights are loaded)."""
    from service.breakdown import graph_of

    return graph_of(model_ref).is_causal


def send(celery: Any, search_id: str, spec: dict[str, Any], trial: int, record: dict[str, Any], prompt: str,
         max_new_tokens: int) -> str:
    """Queue the generation of trial `trial`, whose candidate `record` the service read from the study
    already (so the worker need not open the study again); returns its task id."""
    task_id = new_task_id(search_id, trial)
    celery.backend.store_result(task_id, None, ISSUED)  # before sending: a fast worker's answer must win
    celery.send_task(GENERATE_TASK, task_id=task_id, queue=GENERATE_QUEUE,
                     kwargs={"spec": spec, "trial": trial, "prompt": prompt, "max_new_tokens": max_new_tokens,
                            "record": record})
    return task_id


def outcome(celery: Any, task_id: str) -> Outcome | None:
    """What became of a generation; None when no such task was issued (or its result expired)."""
    result = celery.AsyncResult(task_id)
    state = result.state
    if state == "PENDING":
        return None
    if state == "SUCCESS":
        value = result.result if isinstance(result.result, dict) else {}
        if value.get("error") or "text" not in value:
            return Outcome(FAILED, value, value.get("error") or "the worker returned no text")
        return Outcome(DONE, value)
    if state in ("FAILURE", "REVOKED"):
        return Outcome(FAILED, error=_one_line(result.result))
    return Outcome(PENDING)  # RECEIVED (issued, queued), STARTED, RETRY


def _one_line(exc: Any) -> str:
    if exc is None:
        return "the task was cancelled"
    text = str(exc).strip()
    name = type(exc).__name__
    if name in ("SoftTimeLimitExceeded", "TimeLimitExceeded"):
        return "the worker took too long (over its time limit); try fewer new tokens"
    return f"{name}: {text.splitlines()[0]}" if text else name
