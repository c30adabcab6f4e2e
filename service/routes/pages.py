"""The web page, server-rendered: searches, one search's front, one candidate, the new-search form.

Pages render the same bodies the API returns; the small scripts in /static
poll the API for live progress and draw the plot, table and heatmap.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from search.errors import DeviceFitError
from search.spec import SearchSpec
from service.deps import services
from service.generations import can_generate
from service.routes.devices import device_list
from service.views import candidate_detail, job_detail, job_summary

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")


def _error(request: Request, exc: DeviceFitError, status: int = 404) -> HTMLResponse:
    return templates.TemplateResponse(request, "error.html", {"message": str(exc)}, status_code=status)


@router.get("/", response_class=HTMLResponse)
async def index(offset: int = Query(0, ge=0, le=10_000_000), app=Depends(services)) -> HTMLResponse:
    """Polled by every open list: the rendered page is reused for app.pages' TTL (POST and DELETE clear it)."""
    body = await app.pages.fetch(f"index:{offset}", lambda: (_index_page(app, offset), False))
    return HTMLResponse(body)


def _index_page(app, offset: int) -> bytes:
    rows, total = app.jobs.store.page(offset=offset, limit=50)
    jobs = [job_summary(app.jobs.refresh(r)) for r in rows]
    html = templates.get_template("index.html").render(jobs=jobs, total=total, offset=offset, limit=50)
    return html.encode()


@router.get("/new", response_class=HTMLResponse)
def new_search(request: Request, app=Depends(services)) -> HTMLResponse:
    return templates.TemplateResponse(request, "new.html", {
        "devices": device_list(), "defaults": SearchSpec(), "needs_token": bool(app.settings.api_token)})


@router.get("/searches/{search_id}", response_class=HTMLResponse)
def search_page(request: Request, search_id: str, app=Depends(services)) -> HTMLResponse:
    try:
        detail = job_detail(app, app.jobs.get(search_id))
    except DeviceFitError as exc:
        return _error(request, exc)
    return templates.TemplateResponse(request, "search.html", {
        "job": detail, "detail_json": detail.model_dump_json(), "needs_token": bool(app.settings.api_token)})


@router.get("/searches/{search_id}/candidates/{k}", response_class=HTMLResponse)
def candidate_page(request: Request, search_id: str, k: int, app=Depends(services)) -> HTMLResponse:
    try:
        job = app.jobs.get(search_id)
        detail = candidate_detail(app, job, k)
    except DeviceFitError as exc:
        return _error(request, exc)
    return templates.TemplateResponse(request, "candidate.html", {
        "c": detail, "detail_json": detail.model_dump_json(), "recipe_json": detail.recipe.to_json(indent=2),
        "can_generate": can_generate(app.jobs.spec_of(job).model),
        "needs_token": bool(app.settings.api_token)})
