"""POST /search, GET /search, GET /search/{id}, DELETE /search/{id}."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from search.spec import SearchSpec
from service.deps import require_token, services
from service.schemas import EXAMPLE_SPEC, Accepted, JobDetail, JobPage
from service.tables import FINISHED, STATUSES
from service.views import job_detail, job_summary, links

router = APIRouter(prefix="/search", tags=["searches"])

_ERRORS = {400: {"description": "refused input (unsafe model path, unknown device, ...), with the reason"},
           401: {"description": "missing or wrong API token"},
           413: {"description": "request body over the size limit"},
           422: {"description": "the body does not validate; the message names the field"}}


@router.post("", status_code=202, response_model=Accepted, responses=_ERRORS,
             dependencies=[Depends(require_token)], summary="Start a search")
def submit(request: Request, response: Response,
           spec: SearchSpec = Body(openapi_examples={
               "minilm-on-rpi5": {"summary": "demo encoder on a Raspberry Pi 5", "value": EXAMPLE_SPEC},
               "memory-cap": {"summary": "a latency budget and a memory cap on a Jetson (works offline)",
                              "value": {"model": "demo:minilm", "device": "jetson-orin-nano",
                                        "workload": "encode:256",
                                        "budget": {"max_latency": "20ms", "max_memory": "40MB"},
                                        "trials": 60}}}),
           app=Depends(services)) -> Accepted:
    """Queue a compression search. The body is a SearchSpec; the answer links to its status."""
    job = app.jobs.submit(spec)
    app.pages.clear()
    response.headers["Location"] = f"/search/{job.id}"
    return Accepted(id=job.id, status=job.status, links=links(job.id))


@router.get("", response_model=JobPage, summary="List searches, newest first")
def list_searches(request: Request, offset: int = Query(0, ge=0, le=10_000_000),
                  limit: int = Query(20, ge=1, le=200),
                  status: str | None = Query(None, pattern="^(" + "|".join(STATUSES) + ")$"),
                  app=Depends(services)) -> JobPage:
    rows, total = app.jobs.store.page(offset=offset, limit=limit, status=status)
    nxt = None
    if offset + len(rows) < total:
        nxt = f"/search?offset={offset + limit}&limit={limit}" + (f"&status={status}" if status else "")
    return JobPage(items=[job_summary(app.jobs.refresh(r)) for r in rows], total=total, offset=offset,
                   limit=limit, next=nxt)


@router.get("/{search_id}", response_model=JobDetail, responses={404: {"description": "no such search"}},
            summary="Status, progress and the current Pareto front")
async def get_search(search_id: str, app=Depends(services)) -> Response:
    """Polled by every open page: a rendered body is reused (for good once the search finished)."""
    body = await app.responses.fetch(search_id, lambda: _render(app, search_id))
    return Response(body, media_type="application/json")


def _render(app, search_id: str) -> tuple[bytes, bool]:
    detail = job_detail(app, app.jobs.get(search_id))
    return detail.model_dump_json().encode(), detail.status in FINISHED


@router.delete("/{search_id}", response_model=JobDetail, dependencies=[Depends(require_token)],
               responses={404: {"description": "no such search"}, 401: _ERRORS[401]},
               summary="Cancel a search (the trials so far stay)")
def cancel_search(search_id: str, app=Depends(services)) -> JobDetail:
    job = app.jobs.cancel(search_id)
    app.responses.drop(search_id)
    app.pages.clear()
    return job_detail(app, job)
