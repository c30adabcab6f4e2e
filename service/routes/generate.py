"""The "try it" box: POST a prompt for a causal-LM candidate, then poll GET .../generations/{id} for its text.

Like a download, the work is done by a worker (service/generations.py): the POST answers 202 with the
generation's id at once, and the GET answers 202 "pending" (Retry-After) until the worker's answer is
there, then 200 with status "done" (the text) or "failed" (the reason). A candidate is addressed by
trial (stable) or by its index k in the front now.
"""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Response
from fastapi.responses import JSONResponse

from search.candidates import CANDIDATE_ATTR
from search.errors import DeviceFitError
from search.spec import SearchSpec
from service import generations
from service.deps import require_token, services
from service.errors import NotFound
from service.schemas import GenerateRequest, Generation, GenerationLinks
from service.views import download_url, front_entry

router = APIRouter(prefix="/search/{search_id}", tags=["try it"])

RETRY_AFTER_S = 1
_K = Path(ge=0, le=100_000, description="index in the front, 0 = first as GET /search/{id} lists them")
_TRIAL = Path(ge=0, le=10_000_000, description="the trial's number in the search (stable)")
_ID = Path(pattern=r"^gen-[0-9a-f]{1,40}-[0-9]{1,8}-[0-9a-f]{1,40}$", max_length=100, description="as the POST answered it")
_BODY = Body(openapi_examples={"continue": {"summary": "continue a sentence",
                                            "value": {"prompt": "The quick brown fox", "max_new_tokens": 32}}})
_POST_ERRORS = {400: {"description": "the model is an encoder: it cannot generate text"},
                401: {"description": "missing or wrong API token"},
                404: {"description": "no such search or candidate, or no task queue to run it"},
                413: {"description": "request body over the size limit"},
                422: {"description": "empty or too long prompt, or max_new_tokens out of range"}}


class GenerationUnavailable(NotFound):
    """No task queue: nobody can run the candidate."""


@router.post("/candidates/{k}/generate", status_code=202, response_model=Generation, responses=_POST_ERRORS,
             dependencies=[Depends(require_token)], summary="Continue a prompt with the front's candidate k")
def generate_candidate(response: Response, search_id: str, k: int = _K, body: GenerateRequest = _BODY,
                       app=Depends(services)) -> Generation:
    job = app.jobs.get(search_id)
    entry = front_entry(job, app.studies.view(job, SearchSpec.model_validate_json(job.spec)), k)
    return _start(app, response, search_id, entry.trial, body)


@router.post("/trials/{trial}/generate", status_code=202, response_model=Generation, responses=_POST_ERRORS,
             dependencies=[Depends(require_token)], summary="Continue a prompt with a trial's candidate")
def generate_trial(response: Response, search_id: str, trial: int = _TRIAL, body: GenerateRequest = _BODY,
                   app=Depends(services)) -> Generation:
    return _start(app, response, search_id, trial, body)


def _start(app, response: Response, search_id: str, trial: int, body: GenerateRequest) -> Generation:
    """Checks in the order a user can fix them: the search, the candidate, the model, then the queue."""
    job = app.jobs.get(search_id)
    spec = SearchSpec.model_validate_json(job.spec)
    finished = app.studies.finished_trial(job, spec, trial)
    record = finished.user_attrs.get(CANDIDATE_ATTR) if finished is not None else None
    if not isinstance(record, dict):
        raise NotFound(f"trial: search {job.id} has no finished candidate with trial number {trial}")
    try:
        causal = generations.can_generate(spec.model)
    except DeviceFitError as exc:
        raise DeviceFitError(f"model: {exc}") from None
    if not causal:
        raise DeviceFitError(f"model: {spec.model} is an encoder; only causal language models generate text")
    if not app.settings.dispatch:
        raise GenerationUnavailable("generate: candidates run on workers, and this server has no task queue")
    try:
        task_id = generations.send(app.jobs.dispatcher.celery, job.id, spec.model_dump(mode="json"), trial, record,
                                   body.prompt, body.max_new_tokens)
    except Exception as exc:  # noqa: BLE001 - the broker is down: say so, do not 500
        raise HTTPException(503, f"generate: cannot reach the task queue ({type(exc).__name__}); "
                                 "try again later") from None
    answer = _pending(job.id, task_id, trial)
    response.headers["Location"] = answer.links.self
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return answer


def _pending(search_id: str, task_id: str, trial: int) -> Generation:
    return Generation(id=task_id, status=generations.PENDING, trial=trial, retry_after=RETRY_AFTER_S,
                      links=_links(search_id, task_id, trial))


def _links(search_id: str, task_id: str, trial: int) -> GenerationLinks:
    return GenerationLinks(self=f"/search/{search_id}/generations/{task_id}", download=download_url(search_id, trial))


@router.get("/generations/{generation_id}", response_model=Generation,
            responses={202: {"model": Generation, "description": "pending: ask again after Retry-After seconds"},
                       404: {"description": "no such search or generation (results are kept 7 days)"}},
            summary="The text a candidate generated (pending, done or failed)")
def get_generation(search_id: str, generation_id: str = _ID, app=Depends(services)):
    job = app.jobs.get(search_id)
    missing = NotFound(f"generation: search {job.id} has no generation {generation_id}")
    trial = generations.trial_of(generation_id, job.id)
    if trial is None or not app.settings.dispatch:
        raise missing
    try:
        found = generations.outcome(app.jobs.dispatcher.celery, generation_id)
    except Exception as exc:  # noqa: BLE001 - the backend is down
        raise HTTPException(503, f"generation: cannot reach the task queue ({type(exc).__name__}); "
                                 "try again later") from None
    if found is None:
        raise missing
    if found.status == generations.PENDING:
        body = _pending(job.id, generation_id, trial)
        return JSONResponse(body.model_dump(mode="json"), status_code=202,
                            headers={"Retry-After": str(RETRY_AFTER_S)})
    fields = {name: found.result.get(name) for name in ("text", "prompt_tokens", "new_tokens", "tokens_per_second",
                                                        "build_seconds", "cached")}
    return Generation(id=generation_id, status=found.status, trial=trial, error=found.error,
                      links=_links(job.id, generation_id, trial), **fields)
